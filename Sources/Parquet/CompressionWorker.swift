#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a column's finished pages go: header + (compressed) body, and exact size totals.
///
/// While pages of this sink are queued on a `CompressionWorker`, only the worker thread touches
/// it; the writer reads it only after `CompressionWorker.drain()` returned.
final class PageSink {
    /// Starts small: a writer has one sink per column and a process may hold many writers; most
    /// columns (levels, partition, topic) compress to a few KiB per row group.
    let chunk = ByteBuffer(capacity: 4 * 1024)
    /// Sum of header + uncompressed body sizes (`total_uncompressed_size` contribution).
    var uncompressed: Int64 = 0
    /// Sum of header + stored body sizes (`total_compressed_size` contribution).
    var compressed: Int64 = 0

    func reset() {
        chunk.removeAll()
        chunk.shrink(ifAbove: 1 << 24)
        uncompressed = 0
        compressed = 0
    }
}

/// What kind of page a body is, with the fields its header needs.
enum PageKind {
    /// DATA_PAGE (PageType 0) with DataPageHeader (PageHeader field 5).
    case data(numValues: Int32, encoding: ParquetEncoding)
    /// DICTIONARY_PAGE (PageType 2) with DictionaryPageHeader (PageHeader field 7); `encoding`
    /// is PLAIN, or PLAIN_DICTIONARY in the compatible profile (the values are PLAIN either way).
    case dictionary(numValues: Int32, encoding: ParquetEncoding)
}

/// Compresses `body` and appends `PageHeader` + stored body to `sink`.
///
/// PageHeader fields (parquet.thrift): 1 type, 2 uncompressed_page_size, 3 compressed_page_size
/// (both exclude the header); DataPageHeader 1 num_values (nulls included), 2 encoding,
/// 3 definition_level_encoding = RLE, 4 repetition_level_encoding = RLE; DictionaryPageHeader
/// 1 num_values, 2 encoding (PLAIN, or PLAIN_DICTIONARY).
func encodePage(
    body: ByteBuffer, kind: PageKind, compressor: (any PageCompressor)?, compressed: ByteBuffer, header: ByteBuffer,
    into sink: PageSink, column: String
) throws(ParquetError) {
    guard body.count <= Int(Int32.max) else {
        throw ParquetError(.valueTooLarge, "page of \(body.count) bytes exceeds 2 GiB", column: column)
    }
    let payload: ByteBuffer
    if let compressor {
        try compressor.compress(body.bytes, into: compressed)
        payload = compressed
    } else {
        payload = body
    }
    guard payload.count <= Int(Int32.max) else {
        throw ParquetError(.valueTooLarge, "compressed page exceeds 2 GiB", column: column)
    }
    header.removeAll()
    var w = ThriftCompactWriter(out: header)
    w.beginStructValue()
    switch kind {
    case .data(let numValues, let encoding):
        w.writeI32(1, 0)
        w.writeI32(2, Int32(body.count))
        w.writeI32(3, Int32(payload.count))
        w.writeStruct(5) { h in
            h.writeI32(1, numValues)
            h.writeI32(2, encoding.rawValue)
            h.writeI32(3, ParquetEncoding.rle.rawValue)
            h.writeI32(4, ParquetEncoding.rle.rawValue)
        }
    case .dictionary(let numValues, let encoding):
        w.writeI32(1, 2)
        w.writeI32(2, Int32(body.count))
        w.writeI32(3, Int32(payload.count))
        w.writeStruct(7) { h in
            h.writeI32(1, numValues)
            h.writeI32(2, encoding.rawValue)
        }
    }
    w.endStructValue()
    sink.chunk.append(header.bytes)
    sink.chunk.append(payload.bytes)
    sink.uncompressed += Int64(header.count + body.count)
    sink.compressed += Int64(header.count + payload.count)
}

/// Background threads that compress data pages while the writer keeps encoding.
///
/// Pages are compressed in parallel (each thread has its own compressor: a zstd context, a zlib
/// stream, or a stateless Snappy) into per-job buffers,
/// then committed to their column's `PageSink` strictly in submission order, so the file is
/// byte-for-byte the same as with inline compression. At most `maxPending` pages are queued or
/// in flight (`submit` blocks), which bounds the extra memory to a few pages; buffers are
/// recycled. The writer must `drain()` before reading any sink.
///
/// `@unchecked Sendable`: the object is shared with its threads. Every mutable field below the
/// mutex is read and written only with `mutex` held. A job's `body` and `result` belong to the
/// one thread that took the job until it marks the job done under the mutex; sinks are only
/// appended to under the mutex (commit) and read by the writer only after `drain()`.
final class CompressionWorker: @unchecked Sendable {
    private final class Job {
        let body: ByteBuffer
        let kind: PageKind
        let sink: PageSink
        let column: String
        var result: PageSink?
        var error: ParquetError?
        var done = false

        init(body: ByteBuffer, kind: PageKind, sink: PageSink, column: String) {
            self.body = body
            self.kind = kind
            self.sink = sink
            self.column = column
        }
    }

    /// Per-thread compression state. `@unchecked Sendable`: created on the writer's thread, then
    /// handed to exactly one compression thread (through pthread_create), which alone uses it.
    private final class Lane: @unchecked Sendable {
        let worker: CompressionWorker
        let compressor: (any PageCompressor)?
        let compressed = ByteBuffer(capacity: 1 << 20)
        let header = ByteBuffer(capacity: 256)

        init(worker: CompressionWorker, compressor: (any PageCompressor)?) {
            self.worker = worker
            self.compressor = compressor
        }
    }

    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let changed: UnsafeMutablePointer<pthread_cond_t>
    /// Submitted jobs not yet committed, in submission order; `queue[started...]` are not yet taken.
    private var queue: [Job] = []
    private var committed = 0
    private var started = 0
    private var freeBuffers: [ByteBuffer] = []
    private var freeResults: [PageSink] = []
    private var stopping = false
    private var failure: ParquetError?
    private var threads: [pthread_t] = []
    private let maxPending: Int
    /// Whether a writer may hand a column's filled PLAIN buffer over as the page body and take a
    /// recycled one back (no copy). Off for a worker shared by many writers: recycled buffers
    /// move between columns and writers, so every column of every writer would end up holding
    /// a buffer the size of the largest page (heaptrack, 48 open writers: 92 MiB).
    let acceptsHandover: Bool

    /// Starts `threads` compression threads for `compression`.
    init(
        compression: ParquetCompression, threads: Int, maxPending: Int? = nil, acceptsHandover: Bool = true
    ) throws(ParquetError) {
        self.acceptsHandover = acceptsHandover
        let count = max(threads, 1)
        // Create every compressor before starting any thread, so a failure leaves nothing running.
        var compressors: [(any PageCompressor)?] = []
        for _ in 0..<count {
            compressors.append(try compression.makeCompressor())
        }
        self.maxPending = max(maxPending ?? 2 * count + 2, 1)
        mutex = .allocate(capacity: 1)
        changed = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(changed, nil)
        for compressor in compressors {
            let lane = Lane(worker: self, compressor: compressor)
            var handle = pthread_t()
            let context = Unmanaged.passRetained(lane).toOpaque()
            let status = pthread_create(
                &handle, nil,
                { context in
                    let lane = Unmanaged<Lane>.fromOpaque(context!).takeRetainedValue()
                    lane.worker.run(lane)
                    return nil
                }, context)
            guard status == 0 else {
                Unmanaged<Lane>.fromOpaque(context).release()
                shutdown()
                throw ParquetError(.io, "pthread_create failed", systemError: status)
            }
            self.threads.append(handle)
        }
    }

    deinit {
        pthread_cond_destroy(changed)
        pthread_mutex_destroy(mutex)
        changed.deallocate()
        mutex.deallocate()
    }

    /// A cleared buffer to fill: a recycled page body, or a new one. Never blocks.
    func takeBuffer() -> ByteBuffer {
        pthread_mutex_lock(mutex)
        let buffer = freeBuffers.popLast() ?? ByteBuffer(capacity: 64 * 1024)
        pthread_mutex_unlock(mutex)
        buffer.removeAll()
        return buffer
    }

    /// Queues a page; the caller must not touch `body` afterwards (it is recycled by `takeBuffer`).
    /// Blocks while `maxPending` pages are queued or in flight.
    func submit(body: ByteBuffer, kind: PageKind, sink: PageSink, column: String) throws(ParquetError) {
        pthread_mutex_lock(mutex)
        while queue.count - committed >= maxPending && failure == nil {
            pthread_cond_wait(changed, mutex)
        }
        if let failure {
            freeBuffers.append(body)
            pthread_mutex_unlock(mutex)
            throw failure
        }
        queue.append(Job(body: body, kind: kind, sink: sink, column: column))
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(mutex)
    }

    /// Waits until every submitted page is committed to its sink; rethrows the first error.
    func drain() throws(ParquetError) {
        pthread_mutex_lock(mutex)
        while committed < queue.count && failure == nil {
            pthread_cond_wait(changed, mutex)
        }
        let failure = self.failure
        pthread_mutex_unlock(mutex)
        if let failure {
            throw failure
        }
    }

    /// Finishes queued work, stops the threads and joins them. Idempotent.
    func shutdown() {
        pthread_mutex_lock(mutex)
        stopping = true
        pthread_cond_broadcast(changed)
        let handles = threads
        threads = []
        pthread_mutex_unlock(mutex)
        for handle in handles {
            pthread_join(handle, nil)
        }
    }

    private func run(_ lane: Lane) {
        while true {
            pthread_mutex_lock(mutex)
            while started == queue.count && !stopping {
                pthread_cond_wait(changed, mutex)
            }
            if started == queue.count {
                pthread_mutex_unlock(mutex)
                return
            }
            let job = queue[started]
            started += 1
            let result = freeResults.popLast() ?? PageSink()
            let skip = failure != nil
            pthread_mutex_unlock(mutex)

            result.reset()
            var error: ParquetError?
            if !skip {
                do {
                    try encodePage(
                        body: job.body, kind: job.kind, compressor: lane.compressor, compressed: lane.compressed,
                        header: lane.header, into: result, column: job.column)
                } catch let e {
                    error = e
                }
            }
            job.body.removeAll()
            job.body.shrink(ifAbove: 8 << 20)

            pthread_mutex_lock(mutex)
            job.result = result
            job.error = error
            job.done = true
            commitFinished()
            pthread_cond_broadcast(changed)
            pthread_mutex_unlock(mutex)
        }
    }

    /// Appends finished jobs to their sinks in submission order. Called with `mutex` held.
    private func commitFinished() {
        while committed < queue.count && queue[committed].done {
            let job = queue[committed]
            if let error = job.error, failure == nil {
                failure = error
            }
            if let result = job.result {
                if failure == nil {
                    job.sink.chunk.append(result.chunk.bytes)
                    job.sink.uncompressed += result.uncompressed
                    job.sink.compressed += result.compressed
                }
                freeResults.append(result)
            }
            freeBuffers.append(job.body)
            committed += 1
        }
        if committed == queue.count && started == queue.count {
            queue.removeAll(keepingCapacity: true)
            committed = 0
            started = 0
        }
    }
}
