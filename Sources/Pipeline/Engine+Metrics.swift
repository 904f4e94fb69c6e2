import Foundation
import KafkaSource
import Logging
import Manifest
import ObjectStore
import Synchronization

/// Feeding ``EngineMetrics`` and ``EngineHealth`` from the poll thread: tallies once per poll,
/// gauges every couple of seconds, and an object-store reachability check when one is due.
extension Engine {
    /// How often the poll thread refreshes lag, partition and manifest gauges.
    static let gaugeRefreshInterval = Duration.seconds(2)

    /// Adds the records, rejections and bytes read since the last call to the counters.
    func flushPollMetrics() {
        collectTallies()
        let now = (records: stats.records, rejected: stats.rejected, bytes: stats.bytes)
        metrics.addPolled(records: now.records - polledForMetrics.records, rejected: now.rejected - polledForMetrics.rejected,
                          bytes: now.bytes - polledForMetrics.bytes)
        polledForMetrics = now
    }

    /// Sets the lag per partition (cached watermarks, no broker round trip), the assigned and
    /// paused counts and the manifest's batches by state, at most every
    /// ``gaugeRefreshInterval`` unless `force`; starts a store check when one is due. `stopped`:
    /// the consumer is closed, nothing is assigned any more.
    func refreshMetrics(force: Bool = false, stopped: Bool = false) {
        let now = ContinuousClock.now
        if !force, let last = lastGaugeRefresh, now - last < Self.gaugeRefreshInterval { return }
        lastGaugeRefresh = now
        quiesce()  // reads the partitions' positions
        var lag: [TopicPartition: Int64] = [:]
        var assigned = Set<TopicPartition>()
        if !stopped {
            for (tp, st) in partitions {
                assigned.insert(tp)
                guard let w = try? consumer.watermarks(tp, cached: true, timeout: .milliseconds(10)), w.high >= 0 else { continue }
                // Before the first record of this assignment: everything from the chain position on.
                let next = st.lastOffset.map { $0 + 1 } ?? st.position ?? w.low
                lag[tp] = max(0, w.high - next)
            }
        }
        metrics.setPartitions(assigned: assigned, lag: lag, paused: stopped ? 0 : partitions.values.filter(\.paused).count)
        if let counts = try? manifest.countsByState() {
            metrics.setManifestStates(Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) }))
        }
        if !stopped { checkStoreIfDue() }
    }

    /// `/ready` needs to know the store answers even before (or between) uploads: when no
    /// request succeeded recently, list one key under the sink prefix on a background thread
    /// (the request goes through ``InstrumentedObjectStore``, which records the outcome).
    func checkStoreIfDue() {
        guard metrics.health.storeCheckDue(),
              storeCheckRunning.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        let store = self.store
        let prefix = layout.prefix.isEmpty ? "" : layout.prefix + "/"
        let logger = self.logger
        Thread.detachNewThread { [self] in
            defer { storeCheckRunning.store(false, ordering: .relaxed) }
            do {
                _ = try store.listObjects(prefix: prefix, startAfter: nil, continuationToken: nil, maxKeys: 1)
            } catch {
                logger.warning("object store check failed", metadata: ["error": "\(error)"])
            }
        }
    }
}
