/// Page-building resources that several ``ParquetWriter``s used from one thread can share: the
/// page body / compressed-page scratch buffers (1 MiB each) and a compressor per codec (a
/// libzstd context is a few MiB at level 3 with 1 MiB pages). A process that keeps one writer open per Kafka
/// partition would otherwise hold one set per open writer, so its memory would grow with the
/// number of assigned partitions (measured with heaptrack: about 4 MiB per open writer).
///
/// With `compressionThreads > 0` the sharing writers also share that many compression threads
/// (one `CompressionWorker` per codec and level, started on first use, stopped when the scratch is
/// released): encoding stays on the writers' thread while pages are compressed on another core,
/// and threads and contexts do not multiply with the number of open writers. Pages still reach
/// each column in submission order, so files are byte-for-byte the same as with inline
/// compression. A compression error fails every writer sharing the threads from then on.
///
/// With a `memoryBudget` the sharing writers' buffered row groups are limited together
/// (``ParquetMemoryBudget``): when they hold more, the largest are written out early.
///
/// Not thread-safe: only writers used from one thread, one call at a time, may share it.
public final class ParquetWriterScratch {
    let pages = PageScratch()
    /// The limit on what the sharing writers buffer together, or nil for none (each writer is
    /// then bounded by its own `rowGroupMaxBytes` only).
    public let memoryBudget: ParquetMemoryBudget?
    private let compressionThreads: Int
    private var compressors: [ParquetCompression: any PageCompressor] = [:]
    private var workers: [ParquetCompression: CompressionWorker] = [:]

    /// Creates empty scratch buffers; compressors and compression threads start on first use.
    ///
    /// - Parameter compressionThreads: threads that compress the data pages of every sharing
    ///   writer; 0 (default) compresses inline on the writers' thread.
    /// - Parameter memoryBudget: bytes the sharing writers may buffer together (see
    ///   ``ParquetMemoryBudget``); nil (default) for no shared limit.
    public init(compressionThreads: Int = 0, memoryBudget: Int? = nil) {
        self.compressionThreads = max(0, compressionThreads)
        self.memoryBudget = memoryBudget.map { ParquetMemoryBudget(limit: $0) }
    }

    deinit {
        for worker in workers.values { worker.shutdown() }
    }

    /// The shared compressor for `compression` (nil for `.uncompressed`).
    func compressor(_ compression: ParquetCompression) throws(ParquetError) -> (any PageCompressor)? {
        if let c = compressors[compression] { return c }
        guard let c = try compression.makeCompressor() else { return nil }
        compressors[compression] = c
        return c
    }

    /// The shared compression threads for `compression`, or nil when compressing inline.
    func worker(_ compression: ParquetCompression) throws(ParquetError) -> CompressionWorker? {
        guard compressionThreads > 0 else { return nil }
        if let w = workers[compression] { return w }
        let w = try CompressionWorker(compression: compression, threads: compressionThreads, acceptsHandover: false)
        workers[compression] = w
        return w
    }
}
