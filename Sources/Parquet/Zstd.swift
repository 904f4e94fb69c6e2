import CZstd

/// A reusable libzstd compression context (one per writer; not thread-safe).
///
/// Parquet's ZSTD codec is a plain zstd frame per page body; parquet-format's Compression.md
/// defers to libzstd ("the implementation provided by the Zstandard compression library is
/// authoritative").
final class ZstdCompressor: PageCompressor {
    private let context: OpaquePointer
    let level: Int32

    init(level: Int32) throws(ParquetError) {
        guard let context = ZSTD_createCCtx() else {
            throw ParquetError(.compression, "ZSTD_createCCtx returned NULL")
        }
        self.context = context
        self.level = level
    }

    deinit {
        ZSTD_freeCCtx(context)
    }

    /// Compresses `source` into `destination` (replacing its contents). The corresponding C
    /// function is `ZSTD_compressCCtx`.
    func compress(_ source: UnsafeRawBufferPointer, into destination: ByteBuffer) throws(ParquetError) {
        let bound = ZSTD_compressBound(source.count)
        destination.removeAll()
        destination.reserve(bound)
        let written = ZSTD_compressCCtx(
            context, destination.base, bound, source.baseAddress, source.count, level)
        if ZSTD_isError(written) != 0 {
            throw ParquetError(.compression, "ZSTD_compressCCtx: \(String(cString: ZSTD_getErrorName(written)))")
        }
        destination.setCount(written)
    }
}
