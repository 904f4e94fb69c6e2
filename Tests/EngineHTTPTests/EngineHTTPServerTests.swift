import Dispatch
import EngineHTTP
import Foundation
import KafkaSource
import Logging
import ObjectStore
@testable import Pipeline
import Synchronization
import TestSupport
import Testing

/// The HTTP endpoints in-process (no Kafka, no S3): held-open connections, health and readiness
/// states, and the /metrics page through Prometheus' own parser.
///
/// Serialized: these tests block their thread (curl, sleeps, semaphores). The server runs on its
/// own event loop, but parts of Hummingbird's shutdown hop through Swift's global executor,
/// whose two threads (two cores) parallel blocking tests would hold; the engine process never
/// blocks that pool.
@Suite("EngineHTTP server", .serialized)
struct EngineHTTPServerTests {
    static let logger = Logger(label: "test.http")

    @Test("an idle held-open connection and a half-sent request do not stall scrapes; concurrent scrapes all answer")
    func heldOpenConnectionDoesNotBlock() throws {
        let metrics = EngineMetrics()
        let server = try EngineHTTPServer.start(host: "127.0.0.1", port: 0, metrics: metrics, logger: Self.logger)
        defer { server.stop() }
        #expect(server.port > 0)
        let silent = try RawConnection(port: server.port)
        defer { silent.close() }
        let partial = try RawConnection(port: server.port)
        defer { partial.close() }
        partial.send("GET /metrics HTTP/1.1\r\nHost: x\r\n")  // never finished
        let started = Date()
        let scrape = try httpGet(server.port, "/metrics", timeout: 5)
        let health = try httpGet(server.port, "/healthz", timeout: 5)
        #expect(scrape.status == 200)
        #expect(scrape.body.contains("# TYPE tidemark_records_in_total counter"))
        #expect(health.status == 200)
        // Eight scrapes at once, while both raw connections stay open.
        let statuses = Mutex<[Int]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            let a = try? httpGet(server.port, i % 2 == 0 ? "/metrics" : "/ready", timeout: 5)
            statuses.withLock { $0.append(a?.status ?? 0) }
        }
        let all = statuses.withLock { $0 }
        #expect(all.count == 8)
        #expect(all.allSatisfy { $0 == 200 || $0 == 503 }, "every concurrent request answered: \(all)")
        #expect(Date().timeIntervalSince(started) < 15, "the held connections must not serialize requests")
        #expect(try httpGet(server.port, "/nope").status == 404)
    }

    @Test("stop() closes the port; a second stop() is harmless")
    func stopClosesThePort() throws {
        let server = try EngineHTTPServer.start(host: "127.0.0.1", port: 0, metrics: EngineMetrics(), logger: Self.logger)
        let port = server.port
        #expect(try httpGet(port, "/healthz").status == 200)
        let idle = try RawConnection(port: port)
        defer { idle.close() }
        server.stop()
        server.stop()
        #expect(try httpGet(port, "/healthz", timeout: 2).status == 0, "nothing may answer after stop()")
    }

    /// A request that never finishes, stopped while Swift's global pool is held (as parallel
    /// blocking tests hold it): the graceful shutdown outlives its grace and the service group
    /// cancels Hummingbird mid-quiesce. stop() must still return in bounded time with the port
    /// closed, and nothing may trap afterwards. In CI this path once ended the whole test
    /// process: stop() shut the server's own event loop group down under Hummingbird's pending
    /// quiesce promise and NIO trapped ("leaking promise"). The race did not reproduce here on
    /// demand; the server now runs on NIO's never-shut-down singleton group, which removes it.
    @Test("stop() while a request is unfinished and the global pool is busy: bounded, port closed")
    func stopDuringUnfinishedRequest() throws {
        let server = try EngineHTTPServer.start(host: "127.0.0.1", port: 0, metrics: EngineMetrics(), logger: Self.logger)
        let port = server.port
        let partial = try RawConnection(port: port)
        defer { partial.close() }
        partial.send("GET /metrics HTTP/1.1\r\nHost: x\r\n")  // never finished
        let idle = try RawConnection(port: port)
        defer { idle.close() }
        #expect(try httpGet(port, "/healthz").status == 200)
        for _ in 0..<ProcessInfo.processInfo.activeProcessorCount {
            Task.detached { usleep(4_000_000) }
        }
        let started = Date()
        server.stop()
        #expect(Date().timeIntervalSince(started) < 12, "stop() is bounded")
        #expect(try httpGet(port, "/healthz", timeout: 2).status == 0, "nothing answers after stop()")
        // The server keeps winding down on the shared group after stop() gave up waiting: a
        // later server in this process still starts and answers.
        let next = try EngineHTTPServer.start(host: "127.0.0.1", port: 0, metrics: EngineMetrics(), logger: Self.logger)
        defer { next.stop() }
        #expect(try httpGet(next.port, "/healthz").status == 200)
    }

    @Test("binding a port in use fails with an error naming the address")
    func bindConflict() throws {
        let first = try EngineHTTPServer.start(host: "127.0.0.1", port: 0, metrics: EngineMetrics(), logger: Self.logger)
        defer { first.stop() }
        #expect {
            _ = try EngineHTTPServer.start(host: "127.0.0.1", port: first.port, metrics: EngineMetrics(), logger: Self.logger)
        } throws: { error in
            "\(error)".contains("127.0.0.1:\(first.port)")
        }
    }

    @Test("/healthz: 200 while the poll loop beats, 503 naming the stall when it stops")
    func healthz() throws {
        let health = EngineHealth(stallLimit: .milliseconds(400))
        let server = try EngineHTTPServer.start(host: "127.0.0.1", port: 0, metrics: EngineMetrics(health: health), logger: Self.logger)
        defer { server.stop() }
        health.beat()
        #expect(try httpGet(server.port, "/healthz").status == 200)
        usleep(700_000)
        let stalled = try httpGet(server.port, "/healthz")
        #expect(stalled.status == 503)
        #expect(stalled.body.contains("poll loop has not run"), "body: \(stalled.body)")
        health.beat()
        #expect(try httpGet(server.port, "/healthz").status == 200)
    }

    @Test("/ready: 503 naming each failing condition until assigned, store reachable and no fatal error")
    func ready() throws {
        let metrics = EngineMetrics()
        let health = metrics.health
        let server = try EngineHTTPServer.start(host: "127.0.0.1", port: 0, metrics: metrics, logger: Self.logger)
        defer { server.stop() }
        let before = try httpGet(server.port, "/ready")
        #expect(before.status == 503)
        #expect(before.body.contains("no partition assigned"), "body: \(before.body)")
        #expect(before.body.contains("object store not checked yet"), "body: \(before.body)")

        health.setAssigned(3)
        let noStore = try httpGet(server.port, "/ready")
        #expect(noStore.status == 503)
        #expect(!noStore.body.contains("no partition assigned"))

        health.storeOutcome(reachable: true)
        let ok = try httpGet(server.port, "/ready")
        #expect(ok.status == 200, "body: \(ok.body)")

        health.storeOutcome(reachable: false, detail: "PutObject failed (transient): connection refused")
        let down = try httpGet(server.port, "/ready")
        #expect(down.status == 503)
        #expect(down.body.contains("object store unreachable: PutObject failed"), "body: \(down.body)")

        health.storeOutcome(reachable: true)
        health.setFatal("the object store refused putObject permanently")
        let fatal = try httpGet(server.port, "/ready")
        #expect(fatal.status == 503)
        #expect(fatal.body.contains("fatal error: the object store refused"), "body: \(fatal.body)")
    }

    @Test("InstrumentedObjectStore: requests and errors by operation, reachability from the store's answers")
    func instrumentedStore() throws {
        try withTemporaryDirectory { dir in
            let metrics = EngineMetrics()
            let store = InstrumentedObjectStore(base: try FileStore(root: dir.path), metrics: metrics)
            #expect(metrics.health.storeCheckDue())
            _ = try store.putObject(key: "a/1", data: .bytes([1, 2, 3]), metadata: [:], ifNoneMatch: true)
            #expect(!metrics.health.storeCheckDue())
            #expect(throws: ObjectStoreError.self) {
                _ = try store.putObject(key: "a/1", data: .bytes([4]), metadata: [:], ifNoneMatch: true)
            }
            #expect(throws: ObjectStoreError.self) { _ = try store.getObject(key: "missing", range: nil) }
            // Errors the store answered leave it reachable.
            #expect(metrics.health.readiness().failing == ["no partition assigned"])
            let f = try parseExposition(metrics.exposition())
            #expect(f["tidemark_s3_requests"]?.value("tidemark_s3_requests_total", ["operation": "put_object"]) == 2)
            #expect(f["tidemark_s3_requests"]?.value("tidemark_s3_requests_total", ["operation": "get_object"]) == 1)
            #expect(f["tidemark_s3_errors"]?.value("tidemark_s3_errors_total", ["operation": "put_object", "kind": "alreadyExists"]) == 1)
            #expect(f["tidemark_s3_errors"]?.value("tidemark_s3_errors_total", ["operation": "get_object", "kind": "notFound"]) == 1)
        }
    }

    /// Feeds `metrics` through every recording path; returns what it fed.
    static func exercise(_ metrics: EngineMetrics, directory: URL) throws -> (records: Int, rejected: Int, bytes: Int, kafkaMillis: Int64,
                                                                              tps: [TopicPartition]) {
        let tps = (0..<3).map { TopicPartition(topic: "logs", partition: Int32($0)) }
        let polls = [(100, 2, 4_000), (250, 0, 9_000), (7, 7, 300)]
        for p in polls { metrics.addPolled(records: p.0, rejected: p.1, bytes: p.2) }
        let kafkaMillis = Int64(Date().timeIntervalSince1970 * 1000) - 42_000
        metrics.batchOutcome("staged")
        metrics.sealed(batchID: 7, tp: tps[1], duration: .milliseconds(30), kafkaMillis: kafkaMillis,
                       eventMicros: kafkaMillis * 1000 - 5_000_000)
        metrics.batchDriven(upload: .milliseconds(1200), commit: .milliseconds(20), outcome: .committed)
        metrics.committed(batchID: 7, sinceSealed: 1.5)
        metrics.batchOutcome("abandoned")
        metrics.retried(kind: "throttled")
        metrics.retried(kind: "throttled")
        metrics.uploaded(bytes: 5_000)
        metrics.dataLoss(records: 11)
        metrics.manifestPruned(batches: 7)
        metrics.setPartitions(assigned: Set(tps), lag: [tps[0]: 5, tps[1]: 0, tps[2]: 123], paused: 1)
        metrics.setManifestStates(["STAGED": 2, "COMMITTED": 9])
        let store = InstrumentedObjectStore(base: try FileStore(root: directory.path), metrics: metrics)
        _ = try store.putObject(key: "k", data: .bytes([1]), metadata: [:], ifNoneMatch: false)
        _ = try? store.getObject(key: "missing", range: nil)
        return (polls.map(\.0).reduce(0, +), polls.map(\.1).reduce(0, +), polls.map(\.2).reduce(0, +), kafkaMillis, tps)
    }

    @Test("/metrics parses with prometheus_client: every family, type and label; values are what was recorded")
    func exposition() throws {
        try withTemporaryDirectory { dir in
            let metrics = EngineMetrics()
            let server = try EngineHTTPServer.start(host: "127.0.0.1", port: 0, metrics: metrics, logger: Self.logger)
            defer { server.stop() }
            let empty = try parseExposition(try httpGet(server.port, "/metrics").body)
            #expect(empty["tidemark_records_in"]?.value("tidemark_records_in_total") == 0)
            #expect(empty["tidemark_ready"]?.value("tidemark_ready") == 0)

            let fed = try Self.exercise(metrics, directory: dir)
            metrics.health.storeOutcome(reachable: true)
            let page = try httpGet(server.port, "/metrics")
            #expect(page.status == 200)
            let f = try parseExposition(page.body)
            let types: [String: String] = [
                "tidemark_records_in": "counter", "tidemark_records_rejected": "counter", "tidemark_input_bytes": "counter",
                "tidemark_bytes_uploaded": "counter", "tidemark_batches": "counter", "tidemark_data_loss_records": "counter",
                "tidemark_manifest_pruned_batches": "counter", "tidemark_retries": "counter", "tidemark_s3_requests": "counter", "tidemark_s3_errors": "counter",
                "tidemark_batch_commit_seconds": "histogram", "tidemark_batch_stage_seconds": "histogram",
                "tidemark_manifest_batches": "gauge", "tidemark_consumer_lag": "gauge", "tidemark_paused_partitions": "gauge",
                "tidemark_assigned_partitions": "gauge", "tidemark_freshness_seconds": "gauge",
                "tidemark_event_freshness_seconds": "gauge", "tidemark_ready": "gauge", "tidemark_build_info": "gauge",
            ]
            for (name, type) in types {
                #expect(f[name]?.type == type, "\(name): \(String(describing: f[name]?.type))")
            }
            #expect(f["tidemark_records_in"]?.value("tidemark_records_in_total") == Double(fed.records))
            #expect(f["tidemark_records_rejected"]?.value("tidemark_records_rejected_total") == Double(fed.rejected))
            #expect(f["tidemark_input_bytes"]?.value("tidemark_input_bytes_total") == Double(fed.bytes))
            #expect(f["tidemark_bytes_uploaded"]?.value("tidemark_bytes_uploaded_total") == 5_000)
            #expect(f["tidemark_data_loss_records"]?.value("tidemark_data_loss_records_total") == 11)
            #expect(f["tidemark_manifest_pruned_batches"]?.value("tidemark_manifest_pruned_batches_total") == 7)
            #expect(f["tidemark_retries"]?.value("tidemark_retries_total", ["kind": "throttled"]) == 2)
            for (outcome, n) in [("staged", 1.0), ("committed", 1), ("abandoned", 1), ("superseded", 0)] {
                #expect(f["tidemark_batches"]?.value("tidemark_batches_total", ["outcome": outcome]) == n, "\(outcome)")
            }
            // Lag: one series per partition, labelled topic and partition.
            let lag = f["tidemark_consumer_lag"]?.samples ?? []
            #expect(Set(lag.map { $0.labels }) == Set(fed.tps.map { ["topic": $0.topic, "partition": String($0.partition)] }))
            #expect(f["tidemark_consumer_lag"]?.value("tidemark_consumer_lag", ["partition": "2"]) == 123)
            #expect(f["tidemark_paused_partitions"]?.value("tidemark_paused_partitions") == 1)
            #expect(f["tidemark_assigned_partitions"]?.value("tidemark_assigned_partitions") == 3)
            #expect(f["tidemark_manifest_batches"]?.value("tidemark_manifest_batches", ["state": "COMMITTED"]) == 9)
            // Freshness: only the partition whose batch committed; ~42 s old (event time 5 s older).
            let fresh = f["tidemark_freshness_seconds"]?.value("tidemark_freshness_seconds", ["topic": "logs", "partition": "1"]) ?? -1
            #expect(fresh >= 42 && fresh < 42 + 30, "freshness \(fresh)")
            #expect(f["tidemark_freshness_seconds"]?.samples.count == 1)
            let eventFresh = f["tidemark_event_freshness_seconds"]?.value("tidemark_event_freshness_seconds", ["partition": "1"]) ?? -1
            #expect(abs(eventFresh - fresh - 5) < 0.01, "event \(eventFresh) vs kafka \(fresh)")
            // Histograms: one sample per stage, in the right bucket.
            for stage in EngineMetrics.BatchStage.allCases {
                #expect(f["tidemark_batch_stage_seconds"]?.value("tidemark_batch_stage_seconds_count", ["stage": stage.rawValue]) == 1)
            }
            #expect(f["tidemark_batch_stage_seconds"]?.value("tidemark_batch_stage_seconds_bucket", ["stage": "upload", "le": "1.0"]) == 0)
            #expect(f["tidemark_batch_stage_seconds"]?.value("tidemark_batch_stage_seconds_bucket", ["stage": "upload", "le": "2.5"]) == 1)
            #expect(f["tidemark_batch_commit_seconds"]?.value("tidemark_batch_commit_seconds_count") == 1)
            #expect(abs((f["tidemark_batch_commit_seconds"]?.value("tidemark_batch_commit_seconds_sum") ?? 0) - 1.5) < 1e-6)
            #expect(f["tidemark_build_info"]?.value("tidemark_build_info",
                                                    ["version": tidemarkVersion, "librdkafka": LibrdkafkaVersion.current.description]) == 1)
            #expect(f["tidemark_ready"]?.value("tidemark_ready") == 1)

            // A revoked partition's lag and freshness series go away.
            metrics.setPartitions(assigned: [fed.tps[0]], lag: [fed.tps[0]: 1], paused: 0)
            let after = try parseExposition(try httpGet(server.port, "/metrics").body)
            #expect(after["tidemark_consumer_lag"]?.samples.map(\.labels["partition"]) == ["0"])
            #expect(after["tidemark_freshness_seconds"]?.samples.isEmpty ?? true)
        }
    }

    @Test("two engines' metrics in one process stay apart (no global MetricsSystem)")
    func twoRegistries() throws {
        let a = EngineMetrics()
        let b = EngineMetrics()
        a.addPolled(records: 5, rejected: 0, bytes: 10)
        let fa = try parseExposition(a.exposition())
        let fb = try parseExposition(b.exposition())
        #expect(fa["tidemark_records_in"]?.value("tidemark_records_in_total") == 5)
        #expect(fb["tidemark_records_in"]?.value("tidemark_records_in_total") == 0)
    }

    @Test("docs/operations.md names every metric family on the page, and every metric it names exists")
    func docsListEveryMetric() throws {
        try withTemporaryDirectory { dir in
            let metrics = EngineMetrics()
            _ = try Self.exercise(metrics, directory: dir)
            let families = try parseExposition(metrics.exposition())
            #expect(families.count >= 19)
            var known = Set(families.keys)
            for (name, f) in families {
                known.formUnion(f.samples.map(\.name))
                if f.type == "counter" { known.insert(name + "_total") }
            }
            let docs = try String(contentsOf: LocalStack.packageRoot.appendingPathComponent("docs/operations.md"), encoding: .utf8)
            let named = Set(docs.matches(of: /\btidemark_[a-z0-9_]+/).map { String($0.output) })
            #expect(named.subtracting(known).isEmpty, "named in docs but not on /metrics: \(named.subtracting(known).sorted())")
            let undocumented = families.map { name, f in f.type == "counter" ? name + "_total" : name }.filter { !named.contains($0) }
            #expect(undocumented.isEmpty, "on /metrics but not in docs/operations.md: \(undocumented.sorted())")
        }
    }

    @Test("deploy/: alerts.yml and the Grafana dashboard parse, and every metric they use is on a real /metrics page")
    func deployFilesUseRealMetrics() throws {
        try withTemporaryDirectory { dir in
            let metrics = EngineMetrics()
            _ = try Self.exercise(metrics, directory: dir)
            let page = dir.appendingPathComponent("page.txt")
            try metrics.exposition().write(to: page, atomically: true, encoding: .utf8)
            let root = LocalStack.packageRoot.path
            let alerts = root + "/deploy/prometheus/alerts.yml"
            let dashboard = root + "/deploy/grafana/tidemark.json"
            let r = try runPythonTool("check_metrics.py", ["deploy", page.path, alerts, dashboard], timeout: 60)
            #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
            let out = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] ?? [:]
            let used = out["metrics_used"] as? [String] ?? []
            #expect(used.count >= 8, "rules and panels use the engine's metrics: \(used)")
            #expect((out["alerts"] as? [String] ?? []).count >= 5)

            // The check can fail: a page without the engine's metrics leaves them all missing.
            let bare = dir.appendingPathComponent("bare.txt")
            try "# TYPE other counter\nother_total 1\n".write(to: bare, atomically: true, encoding: .utf8)
            let neg = try runPythonTool("check_metrics.py", ["deploy", bare.path, alerts, dashboard], timeout: 60)
            #expect(neg.status == 1)
            let negOut = try JSONSerialization.jsonObject(with: Data(neg.stdout.utf8)) as? [String: Any] ?? [:]
            #expect(Set(negOut["missing"] as? [String] ?? []) == Set(used))
        }
    }
}
