import Foundation
import KafkaSource
import Logging
import Manifest
import ObjectStore
import Parquet
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Upload workers ask the poll thread (the only thread that may use the consumer) to read and
/// commit offsets: each request waits on a semaphore until the poll thread served it.
final class PollThreadOffsets: OffsetAuthority, @unchecked Sendable {
    // @unchecked Sendable: `engine` is set once before workers start; everything else is
    // behind `lock`.
    private final class Request: Sendable {
        let tp: TopicPartition
        let commit: (offset: Int64, metadata: String)?
        let done = DispatchSemaphore(value: 0)
        let result = Mutex<Result<(Int64?, Bool), any Error>?>(nil)
        init(tp: TopicPartition, commit: (offset: Int64, metadata: String)?) {
            self.tp = tp
            self.commit = commit
        }
    }

    private let lock = Mutex<(queue: [Request], owned: Set<TopicPartition>, closed: Bool)>(([], [], false))
    private let arrived = DispatchSemaphore(value: 0)
    private unowned(unsafe) var engine: Engine?

    func bind(_ e: Engine) { engine = e }
    func setOwned(_ s: Set<TopicPartition>) { lock.withLock { $0.owned = s } }
    func closeChannel() {
        let waiting = lock.withLock { s -> [Request] in
            s.closed = true
            defer { s.queue.removeAll() }
            return s.queue
        }
        for r in waiting {
            r.result.withLock { $0 = .success((nil, false)) }
            r.done.signal()
        }
    }

    func committedOffset(_ tp: TopicPartition) throws -> (offset: Int64?, owned: Bool) {
        let (o, owned) = try call(tp, commit: nil)
        return (o, owned)
    }

    func commit(_ tp: TopicPartition, offset: Int64, metadata: String) throws -> Bool {
        try call(tp, commit: (offset, metadata)).1
    }

    private func call(_ tp: TopicPartition, commit: (offset: Int64, metadata: String)?) throws -> (Int64?, Bool) {
        let r = Request(tp: tp, commit: commit)
        let closed = lock.withLock { s -> Bool in
            if s.closed { return true }
            s.queue.append(r)
            return false
        }
        if closed { return (nil, false) }
        arrived.signal()
        r.done.wait()
        return try r.result.withLock { $0! }.get()
    }

    /// Serves queued requests (poll thread only); with `wait`, blocks up to that long for one.
    func serve(wait: Duration = .zero) {
        if wait > .zero { _ = arrived.wait(timeout: .now() + .milliseconds(Int(wait.components.seconds * 1000 + wait.components.attoseconds / 1_000_000_000_000_000))) }
        let (requests, owned) = lock.withLock { s -> ([Request], Set<TopicPartition>) in
            defer { s.queue.removeAll() }
            return (s.queue, s.owned)
        }
        guard let consumer = engine?.consumer else {
            for r in requests { r.result.withLock { $0 = .success((nil, false)) }; r.done.signal() }
            return
        }
        // Requests that arrived together go to Kafka together: one OffsetFetch for every read and
        // one OffsetCommit for every commit, instead of a round trip each (32 partitions finishing
        // batches at once made the poll thread wait on the coordinator for seconds). A combined
        // call that fails is retried request by request, so each batch gets its own result.
        var results: [ObjectIdentifier: Result<(Int64?, Bool), any Error>] = [:]
        let reads = requests.filter { $0.commit == nil }
        if !reads.isEmpty {
            if let all = try? consumer.committed(Array(Set(reads.map(\.tp))), timeout: .seconds(10)) {
                for r in reads { results[ObjectIdentifier(r)] = .success((all[r.tp]?.offset, owned.contains(r.tp))) }
            }
        }
        var commits: [TopicPartition: (offset: Int64, metadata: String?)] = [:]
        var committing: [Request] = []
        for r in requests {
            guard let c = r.commit else { continue }
            if !owned.contains(r.tp) {
                results[ObjectIdentifier(r)] = .success((nil, false))
            } else if commits[r.tp] == nil {
                commits[r.tp] = (c.offset, c.metadata)
                committing.append(r)
            }
        }
        if committing.count > 1, (try? consumer.commit(commits)) != nil {
            engine?.stats.lastCommitAt = .now  // poll thread: stats is its own
            for r in committing { results[ObjectIdentifier(r)] = .success((r.commit!.offset, true)) }
        }
        for r in requests {
            let result: Result<(Int64?, Bool), any Error>
            if let done = results[ObjectIdentifier(r)] {
                result = done
            } else if let c = r.commit {
                do {
                    try consumer.commit([r.tp: (c.offset, c.metadata)])
                    engine?.stats.lastCommitAt = .now
                    result = .success((c.offset, true))
                } catch let e as KafkaError where e.isGenerationMismatch {
                    result = .success((nil, false))
                } catch {
                    result = .failure(error)
                }
            } else {
                do {
                    let committed = try consumer.committed([r.tp], timeout: .seconds(10))
                    result = .success((committed[r.tp]?.offset, owned.contains(r.tp)))
                } catch {
                    result = .failure(error)
                }
            }
            r.result.withLock { $0 = result }
            r.done.signal()
        }
    }
}
