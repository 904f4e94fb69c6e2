import CSnappy

/// Raw Snappy compression of page bodies (libsnappy's C API, `snappy-c.h`).
///
/// Parquet's SNAPPY codec is the raw Snappy block format, with no framing: one
/// `snappy_compress` output per page body, as parquet-mr and Arrow write it.
/// libsnappy keeps no state between calls, so one instance may serve any number of pages.
final class SnappyCompressor: PageCompressor {
    init() {}

    /// Compresses `source` into `destination` (replacing its contents) with `snappy_compress`.
    func compress(_ source: UnsafeRawBufferPointer, into destination: ByteBuffer) throws(ParquetError) {
        let bound = snappy_max_compressed_length(source.count)
        destination.removeAll()
        destination.reserve(bound)
        var length = bound
        // snappy reads no input byte for an empty page, but wants a valid pointer.
        var empty: CChar = 0
        let status = withUnsafeMutablePointer(to: &empty) { emptyPointer in
            snappy_compress(
                source.baseAddress?.assumingMemoryBound(to: CChar.self) ?? UnsafePointer(emptyPointer),
                source.count, destination.base.assumingMemoryBound(to: CChar.self), &length)
        }
        guard status == SNAPPY_OK else {
            throw ParquetError(.compression, "snappy_compress failed (status \(status.rawValue))")
        }
        destination.setCount(length)
    }
}
