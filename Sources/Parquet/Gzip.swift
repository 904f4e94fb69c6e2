import CZlib

/// gzip compression of page bodies through zlib, one reusable deflate stream per instance.
///
/// Parquet's GZIP codec is a gzip-format stream (RFC 1952: header, deflate data, CRC-32 and
/// length trailer), not a bare zlib or deflate stream: parquet-format's Compression.md, and
/// what parquet-mr (Hadoop's GzipCodec) and Arrow write. zlib produces it from `deflateInit2`
/// with `windowBits` 15 + 16. Not thread-safe: one instance per thread.
final class GzipCompressor: PageCompressor {
    private let stream: UnsafeMutablePointer<z_stream>
    /// The zlib level, 1 (fastest) to 9 (smallest).
    let level: Int32

    init(level: Int32) throws(ParquetError) {
        self.level = level
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        // windowBits 15 + 16: a 32 KiB window, written as gzip (header and trailer) rather than zlib.
        let status = deflateInit2_(
            stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
            Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            stream.deinitialize(count: 1)
            stream.deallocate()
            throw ParquetError(.compression, "deflateInit2 failed (\(status))")
        }
    }

    deinit {
        deflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Compresses `source` into `destination` (replacing its contents) as one gzip member:
    /// `deflateReset`, then `deflate(Z_FINISH)` into a buffer of `deflateBound` bytes.
    func compress(_ source: UnsafeRawBufferPointer, into destination: ByteBuffer) throws(ParquetError) {
        guard source.count <= Int(UInt32.max) else {
            throw ParquetError(.valueTooLarge, "page of \(source.count) bytes is too large for zlib")
        }
        var status = deflateReset(stream)
        guard status == Z_OK else {
            throw ParquetError(.compression, "deflateReset failed (\(status))")
        }
        let bound = Int(deflateBound(stream, UInt(source.count)))
        destination.removeAll()
        destination.reserve(bound)
        // zlib does not write through next_in; the C declaration is merely not const.
        stream.pointee.next_in = source.baseAddress.map {
            UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: Bytef.self))
        }
        stream.pointee.avail_in = UInt32(source.count)
        stream.pointee.next_out = destination.base.assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_out = UInt32(clamping: bound)
        status = deflate(stream, Z_FINISH)
        let written = bound - Int(stream.pointee.avail_out)
        stream.pointee.next_in = nil
        stream.pointee.next_out = nil
        guard status == Z_STREAM_END else {
            throw ParquetError(.compression, "deflate did not finish (\(status)) within deflateBound")
        }
        destination.setCount(written)
    }
}
