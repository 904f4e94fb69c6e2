import Foundation
import KafkaSource
import Logging
import Manifest
import ObjectStore
import Parquet
import Synchronization
import TidemarkConfig

#if canImport(Glibc)
import Glibc
#endif

extension Engine {
    struct Stats {
        /// What the encoder shards handled, summed (``collectTallies()``): records, rejections,
        /// bytes, batches sealed, busy and seal time, and when the first record was consumed.
        var handled = Tally()
        var records: Int { handled.records }
        var rejected: Int { handled.rejected }
        var bytes: Int { handled.bytes }
        /// When this run started, consumed its first record (``handled``) and last committed an
        /// offset: the end-to-end window of the run summary (and of `make bench`).
        var startedAt = ContinuousClock.now
        /// End of the last poll that returned records (poll granularity: no clock read per record).
        var lastRecordAt: ContinuousClock.Instant?
        var lastCommitAt: ContinuousClock.Instant?
        /// Poll-thread time handing each poll's records to the shards, waiting for a free slot
        /// when the shards are behind included.
        var dispatchTime = Duration.zero
        /// Polls whose records were handled, and how many of them by more than one shard at once.
        /// Poll-thread time inside polls that returned records (librdkafka handing them over).
        var fetchTime = Duration.zero
        var polls = 0
        var sharedPolls = 0
        /// Poll-thread time in polls that returned nothing (waiting for fetches, or every
        /// partition paused) and in serving offset requests for upload workers.
        var idleTime = Duration.zero
        var serveTime = Duration.zero
        var lastReport = ContinuousClock.now
        var recordsAtLastReport = 0
        var bytesAtLastReport = 0
    }

    /// Logs the run's totals and its end-to-end rate: from the first record consumed to the last
    /// offset committed (what `make bench` quotes).
    func summarize() {
        for shard in shards { publish(shard) }  // the shards are stopped: what the poll thread sealed last
        collectTallies()
        var meta: Logger.Metadata = ["records": "\(stats.records)", "rejected": "\(stats.rejected)",
                                     "bytes": "\(stats.bytes)", "batches": "\(stats.handled.batchesSealed)",
                                     "uploaded_bytes": "\(executor.bytesUploaded.load(ordering: .relaxed))"]
        func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
        if let first = stats.handled.firstRecordAt {
            // Start-up cost: opening the manifest, recovery, group join, first fetch.
            meta["first_record_after_seconds"] = "\(String(format: "%.3f", seconds(first - stats.startedAt)))"
        }
        if let first = stats.handled.firstRecordAt, let last = stats.lastCommitAt, last > first {
            let secs = seconds(last - first)
            meta["seconds"] = "\(String(format: "%.3f", secs))"
            meta["wall_seconds"] = "\(String(format: "%.3f", seconds(last - stats.startedAt)))"
            meta["records_per_s"] = "\(Int(Double(stats.records) / secs))"
            meta["mb_per_s"] = "\(String(format: "%.1f", Double(stats.bytes) / secs / 1e6))"
            if let lastRecord = stats.lastRecordAt, last > lastRecord {
                // The drain: sealing, uploading and committing what was read after the last record.
                meta["tail_seconds"] = "\(String(format: "%.3f", seconds(last - lastRecord)))"
            }
        }
        // Stage split (seconds of thread time; upload workers overlap each other and the poll thread).
        func micros(_ a: borrowing Atomic<Int>) -> String { String(format: "%.3f", Double(a.load(ordering: .relaxed)) / 1e6) }
        meta["stage_parse_encode_s"] = "\(String(format: "%.3f", seconds(stats.handled.busyTime)))"
        meta["stage_seal_s"] = "\(String(format: "%.3f", seconds(stats.handled.sealTime)))"
        meta["encoder_threads"] = "\(shards.count)"
        meta["poll_thread_dispatch_s"] = "\(String(format: "%.3f", seconds(stats.dispatchTime)))"
        meta["polls"] = "\(stats.polls)"
        meta["poll_thread_fetch_s"] = "\(String(format: "%.3f", seconds(stats.fetchTime)))"
        meta["polls_shared"] = "\(stats.sharedPolls)"
        meta["poll_thread_idle_s"] = "\(String(format: "%.3f", seconds(stats.idleTime)))"
        meta["poll_thread_offsets_s"] = "\(String(format: "%.3f", seconds(stats.serveTime)))"
        meta["stage_object_store_s"] = "\(micros(executor.objectStoreMicros))"
        meta["stage_manifest_s"] = "\(micros(executor.manifestMicros))"
        meta["stage_offsets_s"] = "\(micros(executor.offsetMicros))"
        let budgets = shards.compactMap(\.scratch.memoryBudget)
        if !budgets.isEmpty {
            // What the open batches' row groups held at most (after early writes; the sum of each
            // shard's peak), and how many row groups were written early to stay within
            // `[batch] memory_budget`.
            meta["buffered_peak_bytes"] = "\(budgets.reduce(0) { $0 + $1.peakBufferedBytes })"
            meta["early_row_groups"] = "\(budgets.reduce(0) { $0 + $1.earlyRowGroups })"
        }
        logger.info("run summary (first record consumed to last offset committed)", metadata: meta)
    }

    func report(force: Bool = false) {
        let now = ContinuousClock.now
        let interval = config.engine.statusInterval
        guard force || (interval > .zero && now - stats.lastReport >= interval) else { return }
        quiesce()  // reads the partitions' last offsets
        let secs = max(0.001, Double((now - stats.lastReport).components.seconds) + Double((now - stats.lastReport).components.attoseconds) / 1e18)
        let rps = Double(stats.records - stats.recordsAtLastReport) / secs
        let mbps = Double(stats.bytes - stats.bytesAtLastReport) / secs / 1_048_576
        var lag: [String] = []
        for tp in partitions.keys.sorted() {
            if let w = try? consumer.watermarks(tp, cached: true, timeout: .milliseconds(10)),
               let last = partitions[tp]?.lastOffset {
                lag.append("\(tp)=\(max(0, w.high - last - 1))")
            }
        }
        let counts = (try? manifest.countsByState()) ?? [:]
        logger.info("status", metadata: [
            "records": "\(stats.records)", "rejected": "\(stats.rejected)",
            "records_per_s": "\(Int(rps))", "mb_per_s": "\(String(format: "%.1f", mbps))",
            "uploaded_mb": "\(executor.bytesUploaded.load(ordering: .relaxed) / 1_048_576)",
            "batches": "\(BatchState.allCases.compactMap { s in counts[s].map { "\(s)=\($0)" } }.joined(separator: " "))",
            "in_flight": "\(scheduler.pendingTotal)", "lag": "\(lag.joined(separator: " "))",
        ])
        stats.lastReport = now
        stats.recordsAtLastReport = stats.records
        stats.bytesAtLastReport = stats.bytes
    }
}
