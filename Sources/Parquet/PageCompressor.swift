/// Compresses page bodies for one Parquet codec. Each implementation owns its C library's
/// state (`ZstdCompressor`, `SnappyCompressor`, `GzipCompressor`); none is thread-safe, so a
/// writer, a shared scratch and each compression thread have their own.
protocol PageCompressor: AnyObject {
    /// Compresses `source` into `destination`, replacing its contents.
    func compress(_ source: UnsafeRawBufferPointer, into destination: ByteBuffer) throws(ParquetError)
}

extension ParquetCompression {
    /// A new compressor for this codec, or nil for `.uncompressed` (pages are stored as encoded).
    func makeCompressor() throws(ParquetError) -> (any PageCompressor)? {
        switch self {
        case .uncompressed: return nil
        case .zstd(let level): return try ZstdCompressor(level: level)
        case .snappy: return SnappyCompressor()
        case .gzip(let level): return try GzipCompressor(level: level)
        }
    }
}
