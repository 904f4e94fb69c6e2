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
    let chunk = ByteBuffer(capacity: 64 * 1024)
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
    /// DICTIONARY_PAGE (PageType 2) with DictionaryPageHeader (PageHeader field 7).
    case dictionary(numValues: Int32)
}

/// Compresses `body` and appends `PageHeader` + stored body to `sink`.
///
/// PageHeader fields (parquet.thrift): 1 type, 2 uncompressed_page_size, 3 compressed_page_size
/// (both exclude the header); DataPageHeader 1 num_values (nulls included), 2 encoding,
/// 3 definition_level_encoding = RLE, 4 repetition_level_encoding = RLE; DictionaryPageHeader
/// 1 num_values, 2 encoding = PLAIN.
func encodePage(
    body: ByteBuffer, kind: PageKind, compressor: ZstdCompressor?, compressed: ByteBuffer, header: ByteBuffer,
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
    case .dictionary(let numValues):
        w.writeI32(1, 2)
        w.writeI32(2, Int32(body.count))
        w.writeI32(3, Int32(payload.count))
        w.writeStruct(7) { h in
            h.writeI32(1, numValues)
            h.writeI32(2, ParquetEncoding.plain.rawValue)
        }
    }
    w.endStructValue()
    sink.chunk.append(header.bytes)
    sink.chunk.append(payload.bytes)
    sink.uncompressed += Int64(header.count + body.count)
    sink.compressed += Int64(header.count + payload.count)
}

/// One background thread that compresses data pages while the writer keeps encoding.
///
/// Jobs run in submission order, so each column's pages land in its `PageSink` in order. At most
/// `maxPending` pages wait at once (`submit` blocks), which bounds the extra memory to a few
/// pages; page buffers are recycled. The writer must `drain()` before reading any sink.
///
/// `@unchecked Sendable`: the object is shared with the worker thread. Every mutable field below
/// the mutex is read and written only with `mutex` held; `compressor`, `compressed` and `header`
/// are used by the worker thread only; a job's `body` and `sink` belong to the worker from
/// `submit` until the job is finished (published under the mutex).
final class CompressionWorker: @unchecked Sendable {
    private struct Job {
        let body: ByteBuffer
        let kind: PageKind
        let sink: PageSink
        let column: String
    }

    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let changed: UnsafeMutablePointer<pthread_cond_t>
    private var jobs: [Job] = []
    private var jobHead = 0
    private var freeBuffers: [ByteBuffer] = []
    private var pending = 0
    private var stopping = false
    private var failure: ParquetError?
    private var thread: pthread_t?

    private let maxPending: Int
    private let compressor: ZstdCompressor
    private let compressed = ByteBuffer(capacity: 1 << 20)
    private let header = ByteBuffer(capacity: 256)

    init(compressor: ZstdCompressor, maxPending: Int = 4) throws(ParquetError) {
        self.compressor = compressor
        self.maxPending = max(maxPending, 1)
        mutex = .allocate(capacity: 1)
        changed = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(changed, nil)
        var handle = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let status = pthread_create(
            &handle, nil,
            { context in
                let worker = Unmanaged<CompressionWorker>.fromOpaque(context!).takeRetainedValue()
                worker.run()
                return nil
            }, context)
        guard status == 0 else {
            Unmanaged<CompressionWorker>.fromOpaque(context).release()
            throw ParquetError(.io, "pthread_create failed", systemError: status)
        }
        thread = handle
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
    /// Blocks while `maxPending` pages are queued, which bounds the memory in flight.
    func submit(body: ByteBuffer, kind: PageKind, sink: PageSink, column: String) throws(ParquetError) {
        pthread_mutex_lock(mutex)
        while pending >= maxPending && failure == nil {
            pthread_cond_wait(changed, mutex)
        }
        if let failure {
            freeBuffers.append(body)
            pthread_mutex_unlock(mutex)
            throw failure
        }
        jobs.append(Job(body: body, kind: kind, sink: sink, column: column))
        pending += 1
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(mutex)
    }

    /// Waits until every submitted page is in its sink; rethrows the first compression error.
    func drain() throws(ParquetError) {
        pthread_mutex_lock(mutex)
        while pending > 0 {
            pthread_cond_wait(changed, mutex)
        }
        let failure = self.failure
        pthread_mutex_unlock(mutex)
        if let failure {
            throw failure
        }
    }

    /// Finishes queued work, stops the thread and joins it. Idempotent.
    func shutdown() {
        pthread_mutex_lock(mutex)
        stopping = true
        pthread_cond_broadcast(changed)
        let handle = thread
        thread = nil
        pthread_mutex_unlock(mutex)
        if let handle {
            pthread_join(handle, nil)
        }
    }

    private func run() {
        while true {
            pthread_mutex_lock(mutex)
            while jobHead == jobs.count && !stopping {
                pthread_cond_wait(changed, mutex)
            }
            if jobHead == jobs.count {
                pthread_mutex_unlock(mutex)
                return
            }
            let job = jobs[jobHead]
            jobHead += 1
            if jobHead == jobs.count {
                jobs.removeAll(keepingCapacity: true)
                jobHead = 0
            }
            let skip = failure != nil
            pthread_mutex_unlock(mutex)

            var error: ParquetError?
            if !skip {
                do {
                    try encodePage(
                        body: job.body, kind: job.kind, compressor: compressor, compressed: compressed, header: header,
                        into: job.sink, column: job.column)
                } catch let e {
                    error = e
                }
            }

            job.body.removeAll()
            job.body.shrink(ifAbove: 8 << 20)
            pthread_mutex_lock(mutex)
            if let error, failure == nil {
                failure = error
            }
            pending -= 1
            freeBuffers.append(job.body)
            pthread_cond_broadcast(changed)
            pthread_mutex_unlock(mutex)
        }
    }
}
