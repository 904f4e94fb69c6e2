import Foundation
import KafkaSource
import CoreMetrics
import Prometheus
import Synchronization

/// The engine's metrics: swift-metrics handles (`Counter`, `Meter`, `Timer`) whose handlers live
/// in a `PrometheusCollectorRegistry` owned by this object, rendered as Prometheus text by
/// ``exposition()``.
///
/// Why not `MetricsSystem.bootstrap(PrometheusMetricsFactory())`: the bootstrap is once per
/// process and global, so two engines in one process (tests) would share — and double count —
/// one registry, and a second bootstrap traps. Each engine instead owns a registry and creates
/// its handles with that registry's handlers (which also keeps the `# HELP` lines, which
/// swift-metrics' factory API cannot pass). Library code that records through swift-metrics'
/// global API can be pointed at ``factory`` by a process that wants it.
///
/// Hot path: nothing here is called per record. The poll thread adds its record/byte tallies
/// once per poll (``addPolled(records:rejected:bytes:)``); per-batch and per-request values are
/// recorded as they happen (atomics for counters, a lock per histogram sample).
public final class EngineMetrics: BatchExecutorObserver {
    /// The registry every metric of this engine is registered in.
    public let registry: PrometheusCollectorRegistry
    /// A swift-metrics factory over ``registry`` (for code that records through swift-metrics).
    public let factory: PrometheusMetricsFactory
    /// Liveness and readiness facts (served as `/healthz` and `/ready`).
    public let health: EngineHealth

    let recordsIn: CoreMetrics.Counter
    let recordsRejected: CoreMetrics.Counter
    let bytesIn: CoreMetrics.Counter
    let bytesUploaded: CoreMetrics.Counter
    let dataLossRecords: CoreMetrics.Counter
    let prunedBatches: CoreMetrics.Counter
    private let batches: [String: CoreMetrics.Counter]
    private let retries = Mutex<[String: CoreMetrics.Counter]>([:])
    private let s3Requests = Mutex<[String: CoreMetrics.Counter]>([:])
    private let s3Errors = Mutex<[String: CoreMetrics.Counter]>([:])
    private let batchCommit: CoreMetrics.Timer
    private let stageTimers: [BatchStage: CoreMetrics.Timer]
    private let pausedPartitions: Meter
    private let assignedPartitions: Meter
    private let ready: Meter
    private let states = Mutex<[String: Meter]>([:])
    private let lag = Mutex<[TopicPartition: Meter]>([:])
    private let freshness = Mutex<[TopicPartition: Freshness]>([:])
    /// Batches sealed in this run, waiting for their commit: the newest timestamps they carry.
    private let sealedTimes = Mutex<[Int64: (tp: TopicPartition, kafkaMillis: Int64?, eventMicros: Int64?)]>([:])

    /// The stages of a batch timed by `tidemark_batch_stage_seconds`.
    public enum BatchStage: String, Sendable, CaseIterable {
        /// Poll thread: finishing the Parquet file, fsync, hashing, the manifest row.
        case seal
        /// Upload worker: every object-store step of the batch, retries included.
        case upload
        /// Upload worker: the manifest record and the Kafka offset commit, retries included.
        case commit
    }

    private struct Freshness {
        var kafkaMillis: Int64?
        var eventMicros: Int64?
        var kafkaGauge: Meter?
        var eventGauge: Meter?
    }

    /// Bucket bounds (seconds) of the duration histograms: sealing takes milliseconds, an upload
    /// through an S3 outage minutes.
    static let durationBuckets: [Duration] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]
        .map { Duration.milliseconds(Int64($0 * 1000)) }

    /// A fresh registry with every engine metric registered (counters at 0, `build_info` 1);
    /// `health` is what `/healthz` and `/ready` (and `tidemark_ready`) report.
    public init(health: EngineHealth = EngineHealth()) {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        self.factory = PrometheusMetricsFactory(registry: registry)
        self.health = health
        let factory = self.factory
        func counter(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> CoreMetrics.Counter {
            CoreMetrics.Counter(label: name, dimensions: labels,
                    handler: registry.makeCounter(descriptor: Self.descriptor(name, help), labels: labels), factory: factory)
        }
        func meter(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Meter {
            Meter(label: name, dimensions: labels,
                  handler: registry.makeGauge(descriptor: Self.descriptor(name, help), labels: labels), factory: factory)
        }
        func timer(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> CoreMetrics.Timer {
            CoreMetrics.Timer(label: name, dimensions: labels,
                          handler: registry.makeDurationHistogram(descriptor: Self.descriptor(name, help), labels: labels,
                                                                  buckets: Self.durationBuckets),
                          factory: factory)
        }
        recordsIn = counter("tidemark_records_in_total", "Kafka records read.")
        recordsRejected = counter("tidemark_records_rejected_total", "Records sent to the dead-letter store.")
        bytesIn = counter("tidemark_input_bytes_total", "Bytes of record values read.")
        bytesUploaded = counter("tidemark_bytes_uploaded_total", "Bytes uploaded to the object store (parts, whole objects, rejected files).")
        var batches: [String: CoreMetrics.Counter] = [:]
        for outcome in ["staged", "committed", "abandoned", "superseded"] {
            batches[outcome] = counter("tidemark_batches_total", "Batches by outcome.", [("outcome", outcome)])
        }
        self.batches = batches
        dataLossRecords = counter("tidemark_data_loss_records_total",
                                  "Offsets deleted by retention before they were delivered (each range is also in the manifest and the log).")
        prunedBatches = counter("tidemark_manifest_pruned_batches_total",
                                "Final batch rows pruned from the manifest ([manifest] retention).")
        batchCommit = timer("tidemark_batch_commit_seconds", "Time from a batch sealed to its offsets committed.")
        var stages: [BatchStage: CoreMetrics.Timer] = [:]
        for stage in BatchStage.allCases {
            stages[stage] = timer("tidemark_batch_stage_seconds",
                                  "Time a batch spent in a stage: seal (poll thread), upload (object-store steps), commit (manifest and offset commit); retries included.",
                                  [("stage", stage.rawValue)])
        }
        stageTimers = stages
        pausedPartitions = meter("tidemark_paused_partitions", "Assigned partitions paused by backpressure (too many batches in flight).")
        assignedPartitions = meter("tidemark_assigned_partitions", "Partitions assigned to this engine.")
        ready = meter("tidemark_ready", "1 when /ready answers 200 (partitions assigned, object store reachable, no fatal error), else 0.")
        meter("tidemark_build_info", "The engine's version and the librdkafka it runs on (value 1).",
              [("version", tidemarkVersion), ("librdkafka", LibrdkafkaVersion.current.description)]).set(Int64(1))
        // Families that get their series later still show their HELP and TYPE from the start.
        _ = retryCounter("transient")
    }

    static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    // MARK: Recording

    /// Adds one poll's tallies (called by the poll thread once per poll, not per record).
    func addPolled(records: Int, rejected: Int, bytes: Int) {
        if records > 0 { recordsIn.increment(by: Int64(records)) }
        if rejected > 0 { recordsRejected.increment(by: Int64(rejected)) }
        if bytes > 0 { bytesIn.increment(by: Int64(bytes)) }
    }

    func batchOutcome(_ outcome: String) { batches[outcome]?.increment() }

    func dataLoss(records: Int64) { dataLossRecords.increment(by: records) }

    func manifestPruned(batches: Int) { prunedBatches.increment(by: Int64(batches)) }

    /// A batch was sealed: its seal time, and the newest Kafka timestamp / event time it holds
    /// (the freshness gauges move to them when it commits).
    func sealed(batchID: Int64, tp: TopicPartition, duration: Duration, kafkaMillis: Int64?, eventMicros: Int64?) {
        stageTimers[.seal]?.recordNanoseconds(Self.nanoseconds(duration))
        sealedTimes.withLock { $0[batchID] = (tp, kafkaMillis, eventMicros) }
    }

    /// A batch's offsets were committed `sinceSealed` after it was sealed.
    func committed(batchID: Int64, sinceSealed: TimeInterval) {
        batchOutcome("committed")
        batchCommit.recordNanoseconds(Int64(max(0, sinceSealed) * 1e9))
        guard let t = sealedTimes.withLock({ $0.removeValue(forKey: batchID) }) else { return }
        freshness.withLock { all in
            var f = all[t.tp] ?? Freshness()
            if let k = t.kafkaMillis, k > (f.kafkaMillis ?? .min) { f.kafkaMillis = k }
            if let e = t.eventMicros, e > (f.eventMicros ?? .min) { f.eventMicros = e }
            all[t.tp] = f
        }
    }

    /// A batch left the pipeline without a commit (abandoned, superseded).
    func forget(batchID: Int64) { _ = sealedTimes.withLock { $0.removeValue(forKey: batchID) } }

    func stage(_ stage: BatchStage, _ duration: Duration) {
        stageTimers[stage]?.recordNanoseconds(Self.nanoseconds(duration))
    }

    private func retryCounter(_ kind: String) -> CoreMetrics.Counter {
        retries.withLock { all in
            if let c = all[kind] { return c }
            let c = CoreMetrics.Counter(label: "tidemark_retries_total", dimensions: [("kind", kind)],
                            handler: registry.makeCounter(
                                descriptor: Self.descriptor("tidemark_retries_total",
                                                            "Retried failures of commit-protocol steps and probes, by kind (throttled, transient, notFound, manifest, other...)."),
                                labels: [("kind", kind)]),
                            factory: factory)
            all[kind] = c
            return c
        }
    }

    /// Counts a retried step failure (``BatchExecutorObserver``).
    public func retried(kind: String) { retryCounter(kind).increment() }

    /// Counts uploaded bytes (``BatchExecutorObserver``).
    public func uploaded(bytes: Int64) { if bytes > 0 { bytesUploaded.increment(by: bytes) } }

    /// Records a committed batch's upload and commit stage times (``BatchExecutorObserver``).
    public func batchDriven(upload: Duration, commit: Duration, outcome: BatchStateMachine.Outcome) {
        guard outcome == .committed else { return }
        stage(.upload, upload)
        stage(.commit, commit)
    }

    /// One object-store request (``InstrumentedObjectStore``); `errorKind` is nil on success.
    func s3Request(operation: String, errorKind: String?) {
        func counter(_ table: borrowing Mutex<[String: CoreMetrics.Counter]>, key: String, name: String, help: String,
                     labels: [(String, String)]) -> CoreMetrics.Counter {
            table.withLock { all in
                if let c = all[key] { return c }
                let c = CoreMetrics.Counter(label: name, dimensions: labels,
                                handler: registry.makeCounter(descriptor: Self.descriptor(name, help), labels: labels),
                                factory: factory)
                all[key] = c
                return c
            }
        }
        counter(s3Requests, key: operation, name: "tidemark_s3_requests_total",
                help: "Object-store requests by operation (each may be several HTTP attempts: the S3 client retries transient failures itself).",
                labels: [("operation", operation)]).increment()
        if let kind = errorKind {
            counter(s3Errors, key: operation + "/" + kind, name: "tidemark_s3_errors_total",
                    help: "Object-store requests that failed, by operation and error kind (notFound and alreadyExists are often expected answers).",
                    labels: [("operation", operation), ("kind", kind)]).increment()
        }
    }

    // MARK: Gauges refreshed by the poll thread

    /// Sets the per-partition lag gauges (and drops those of partitions no longer assigned),
    /// the assigned and paused counts.
    func setPartitions(assigned: Set<TopicPartition>, lag values: [TopicPartition: Int64], paused: Int) {
        assignedPartitions.set(Int64(assigned.count))
        pausedPartitions.set(Int64(paused))
        health.setAssigned(assigned.count)
        freshness.withLock { all in
            for (tp, f) in all where !assigned.contains(tp) {
                f.kafkaGauge?.destroy()
                f.eventGauge?.destroy()
                all[tp] = nil
            }
        }
        lag.withLock { gauges in
            for (tp, gauge) in gauges where values[tp] == nil {
                gauge.destroy()
                gauges[tp] = nil
            }
            for (tp, value) in values {
                let gauge = gauges[tp] ?? Meter(
                    label: "tidemark_consumer_lag", dimensions: Self.labels(tp),
                    handler: registry.makeGauge(descriptor: Self.descriptor("tidemark_consumer_lag",
                                                                            "High watermark minus next offset to read, per assigned partition."),
                                                labels: Self.labels(tp)),
                    factory: factory)
                gauges[tp] = gauge
                gauge.set(value)
            }
        }
    }

    /// Sets `tidemark_manifest_batches{state}`.
    func setManifestStates(_ counts: [String: Int]) {
        states.withLock { gauges in
            for (state, gauge) in gauges where counts[state] == nil { gauge.set(Int64(0)) }
            for (state, n) in counts {
                let gauge = gauges[state] ?? Meter(
                    label: "tidemark_manifest_batches", dimensions: [("state", state)],
                    handler: registry.makeGauge(descriptor: Self.descriptor("tidemark_manifest_batches", "Manifest batches by state."),
                                                labels: [("state", state)]),
                    factory: factory)
                gauges[state] = gauge
                gauge.set(Int64(n))
            }
        }
    }

    static func labels(_ tp: TopicPartition) -> [(String, String)] {
        [("topic", tp.topic), ("partition", String(tp.partition))]
    }

    static func nanoseconds(_ d: Duration) -> Int64 {
        d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
    }

    // MARK: Exposition

    /// Prometheus text exposition (format 0.0.4) of every metric. Values computed at scrape time
    /// (freshness, readiness) are set first.
    public func exposition(now: Date = Date()) -> String {
        ready.set(Int64(health.readiness().ok ? 1 : 0))
        let nowMicros = Int64(now.timeIntervalSince1970 * 1_000_000)
        freshness.withLock { all in
            for (tp, var f) in all {
                if let k = f.kafkaMillis {
                    let g = f.kafkaGauge ?? Meter(
                        label: "tidemark_freshness_seconds", dimensions: Self.labels(tp),
                        handler: registry.makeGauge(descriptor: Self.descriptor("tidemark_freshness_seconds",
                                                                                "Seconds since the Kafka timestamp of the newest record committed (in the object store, offsets committed), per partition."),
                                                    labels: Self.labels(tp)),
                        factory: factory)
                    g.set(Double(nowMicros - k * 1000) / 1e6)
                    f.kafkaGauge = g
                }
                if let e = f.eventMicros {
                    let g = f.eventGauge ?? Meter(
                        label: "tidemark_event_freshness_seconds", dimensions: Self.labels(tp),
                        handler: registry.makeGauge(descriptor: Self.descriptor("tidemark_event_freshness_seconds",
                                                                                "Seconds since the event time of the newest committed batch's last record, per partition (event-time path layouts only)."),
                                                    labels: Self.labels(tp)),
                        factory: factory)
                    g.set(Double(nowMicros - e) / 1e6)
                    f.eventGauge = g
                }
                all[tp] = f
            }
        }
        return registry.emitToString()
    }
}
