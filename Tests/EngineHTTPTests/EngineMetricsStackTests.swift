import Foundation
import KafkaSource
import Pipeline
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// etl-engine against the local Kafka/S3 stack, scraped over HTTP while it runs.
@Suite("Engine metrics (local stack)", .serialized)
struct EngineMetricsStackTests {
    /// Starts etl-engine on `configPath` with `--metrics-port`; the caller stops it by PID.
    static func startEngine(configPath: String, port: Int) throws -> Process {
        let engine = Process()
        engine.executableURL = productsDirectory.appendingPathComponent("etl-engine")
        engine.arguments = ["--config", configPath, "--metrics-port", "\(port)"]
        var env = ProcessInfo.processInfo.environment
        for (k, v) in EngineSetup.awsEnvironment { env[k] = v }
        engine.environment = env
        engine.standardOutput = FileHandle.nullDevice
        engine.standardError = FileHandle.nullDevice
        try engine.run()
        return engine
    }

    static func stop(_ engine: Process) {
        if engine.isRunning { kill(engine.processIdentifier, SIGKILL); engine.waitUntilExit() }
    }

    @Test("after a run: records_in equals records produced, lag 0 for each partition, freshness, S3, stages; /healthz and /ready 200")
    func metricsMoveAfterRun() throws {
        let stack = try LocalStack.current()
        let bucket = uniqueName("metrics")
        try createBucket(bucket, stack: stack)
        try withTemporaryDirectory { dir in
            let partitions = 4
            let produced = 6_000
            // An S3 sink (moto): the S3 request metrics and the start-up probe are real requests.
            let setup = try EngineSetup(stack: stack, topic: uniqueName("m-run"), group: uniqueName("g"), directory: dir,
                                        sink: "s3://\(bucket)/m", maxRecords: 1_000, maxAge: "1s")
            try setup.produce(count: produced, partitions: partitions, badFraction: 0.01)
            let port = 20_000 + Int.random(in: 0..<20_000)
            let engine = try Self.startEngine(configPath: setup.configPath, port: port)
            defer { Self.stop(engine) }

            var families: [String: Family] = [:]
            let deadline = Date().addingTimeInterval(120)
            while Date() < deadline {
                let ready = try httpGet(port, "/ready", timeout: 3)
                let page = try httpGet(port, "/metrics", timeout: 3)
                if page.status == 200 {
                    families = try parseExposition(page.body)
                    let lag = families["tidemark_consumer_lag"]?.samples ?? []
                    let fresh = families["tidemark_freshness_seconds"]?.samples ?? []
                    if families["tidemark_records_in"]?.value("tidemark_records_in_total") == Double(produced),
                       lag.count == partitions, lag.allSatisfy({ $0.value == 0 }), fresh.count == partitions,
                       ready.status == 200 {
                        break
                    }
                }
                usleep(500_000)
            }
            let f = families
            #expect(f["tidemark_records_in"]?.value("tidemark_records_in_total") == Double(produced), "families: \(f.keys.sorted())")
            let rejected = f["tidemark_records_rejected"]?.value("tidemark_records_rejected_total") ?? -1
            #expect(rejected > 0 && rejected < Double(produced) / 10, "about 1% rejected: \(rejected)")
            #expect((f["tidemark_input_bytes"]?.value("tidemark_input_bytes_total") ?? 0) > Double(produced) * 20)
            let lag = f["tidemark_consumer_lag"]?.samples ?? []
            #expect(Set(lag.map { $0.labels["partition"] ?? "" }) == Set((0..<partitions).map(String.init)))
            #expect(lag.allSatisfy { $0.labels["topic"] == setup.topic && $0.value == 0 }, "lag: \(lag)")
            #expect(f["tidemark_assigned_partitions"]?.value("tidemark_assigned_partitions") == Double(partitions))
            #expect(f["tidemark_paused_partitions"]?.value("tidemark_paused_partitions") == 0)
            // Every partition committed something: freshness is the age of records just produced.
            for s in f["tidemark_freshness_seconds"]?.samples ?? [] {
                #expect(s.value >= 0 && s.value < 300, "freshness \(s)")
            }
            let committed = f["tidemark_batches"]?.value("tidemark_batches_total", ["outcome": "committed"]) ?? 0
            #expect(committed >= Double(partitions))
            #expect((f["tidemark_bytes_uploaded"]?.value("tidemark_bytes_uploaded_total") ?? 0) > 0)
            #expect((f["tidemark_s3_requests"]?.value("tidemark_s3_requests_total", ["operation": "put_object"]) ?? 0) >= committed)
            // The start-up conditional-write probe is counted too: its second create is refused.
            let probeRefusals = f["tidemark_s3_errors"]?.value("tidemark_s3_errors_total",
                                                               ["operation": "put_object", "kind": "alreadyExists"]) ?? 0
            #expect(probeRefusals >= 1, "the probe's refused second PutObject is on the page")
            #expect((f["tidemark_s3_requests"]?.value("tidemark_s3_requests_total", ["operation": "delete_object"]) ?? 0) >= 1,
                    "the probe's DeleteObject is on the page")
            for stage in ["seal", "upload", "commit"] {
                let n = f["tidemark_batch_stage_seconds"]?.value("tidemark_batch_stage_seconds_count", ["stage": stage]) ?? 0
                #expect(n >= committed, "stage \(stage): \(n) samples for \(committed) committed batches")
            }
            #expect(f["tidemark_batch_commit_seconds"]?.value("tidemark_batch_commit_seconds_count") == committed)
            #expect(f["tidemark_build_info"]?.samples.first?.labels["librdkafka"]?.isEmpty == false)
            #expect(f["tidemark_ready"]?.value("tidemark_ready") == 1)
            #expect(try httpGet(port, "/healthz").status == 200)
            #expect(try httpGet(port, "/ready").status == 200)

            kill(engine.processIdentifier, SIGTERM)
            engine.waitUntilExit()
            #expect(engine.terminationStatus == 0)
            #expect(try httpGet(port, "/healthz", timeout: 2).status == 0, "the server stops with the engine")
            let v = try setup.verify(expect: produced)
            #expect(v.ok, "\(v.raw)")
        }
    }

    @Test("/ready is 503 naming the object store when the S3 endpoint does not answer; /healthz stays 200 past 30 s of retries")
    func readyWithUnreachableStore() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let setup = try EngineSetup(stack: stack, topic: uniqueName("m-down"), group: uniqueName("g"), directory: dir,
                                        sink: "s3://tidemark-nowhere/p", sinkExtra: "conditional_writes = \"off\"")
            try setup.produce(count: 10, partitions: 1)
            // Nothing listens on port 9 of loopback: every request is refused (transient).
            var text = try String(contentsOfFile: setup.configPath, encoding: .utf8)
            text = text.replacingOccurrences(of: "endpoint = \"\(stack.s3Endpoint)\"", with: "endpoint = \"http://127.0.0.1:9\"")
            #expect(text.contains("127.0.0.1:9"))
            try text.write(toFile: setup.configPath, atomically: true, encoding: .utf8)
            let port = 20_000 + Int.random(in: 0..<20_000)
            let started = Date()
            let engine = try Self.startEngine(configPath: setup.configPath, port: port)
            defer { Self.stop(engine) }
            var last = HTTPAnswer(status: 0, body: "")
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline {
                last = try httpGet(port, "/ready", timeout: 3)
                if last.body.contains("object store unreachable") { break }
                usleep(300_000)
            }
            #expect(last.status == 503)
            #expect(last.body.contains("object store unreachable"), "body: \(last.body)")
            // The poll thread now waits out the probe's retries (the store never answers): past
            // the 30 s stall limit it still counts as alive, since restarting cannot help.
            usleep(UInt32(max(0, 36 - Date().timeIntervalSince(started)) * 1_000_000))
            let health = try httpGet(port, "/healthz")
            #expect(health.status == 200, "body: \(health.body)")
            let f = try parseExposition(try httpGet(port, "/metrics").body)
            #expect(f["tidemark_ready"]?.value("tidemark_ready") == 0)
            #expect((f["tidemark_s3_errors"]?.samples.map(\.value).reduce(0, +) ?? 0) >= 1)
            #expect((f["tidemark_retries"]?.value("tidemark_retries_total", ["kind": "transient"]) ?? 0) >= 1,
                    "the probe is being retried")
        }
    }
    @Test("/ready follows assignment: of five engines on four partitions the one left out is 503 'no partition assigned' until a member leaves")
    func readyFollowsAssignment() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            // The dev broker creates topics with 4 partitions; five members leave one without.
            let topic = uniqueName("m-assign")
            let group = uniqueName("g")
            let setups = try (0..<5).map { i in
                try EngineSetup(stack: stack, topic: topic, group: group, directory: dir.appendingPathComponent("e\(i)"))
            }
            try setups[0].produce(count: 400, partitions: 4)
            let ports = (0..<5).map { i in 20_000 + i * 4_000 + Int.random(in: 0..<4_000) }
            var engines: [Process] = []
            defer { for e in engines { Self.stop(e) } }
            for (setup, port) in zip(setups, ports) {
                engines.append(try Self.startEngine(configPath: setup.configPath, port: port))
            }
            /// Each engine's (ready status, body, assigned partitions), once the group settled:
            /// four ready and every partition assigned once.
            func states() throws -> [(status: Int, body: String, assigned: Double)] {
                try ports.map { port in
                    let r = try httpGet(port, "/ready", timeout: 3)
                    let m = try httpGet(port, "/metrics", timeout: 3)
                    let f = m.status == 200 ? try parseExposition(m.body) : [:]
                    return (r.status, r.body, f["tidemark_assigned_partitions"]?.value("tidemark_assigned_partitions") ?? -1)
                }
            }
            var last: [(status: Int, body: String, assigned: Double)] = []
            var deadline = Date().addingTimeInterval(90)
            while Date() < deadline {
                last = try states()
                if last.filter({ $0.status == 200 }).count == 4, last.map(\.assigned).reduce(0, +) == 4 { break }
                usleep(500_000)
            }
            #expect(last.filter { $0.status == 200 }.count == 4, "four members own a partition each: \(last)")
            let out = last.firstIndex { $0.status != 200 }
            #expect(out != nil)
            if let out {
                #expect(last[out].status == 503)
                #expect(last[out].body.contains("no partition assigned"), "body: \(last[out].body)")
                #expect(last[out].assigned == 0)
                #expect(try httpGet(ports[out], "/healthz").status == 200, "not ready is not dead")
                // A member with a partition leaves cleanly: the left-out one takes it over.
                let leaving = (0..<5).first { $0 != out }!
                kill(engines[leaving].processIdentifier, SIGTERM)
                engines[leaving].waitUntilExit()
                #expect(engines[leaving].terminationStatus == 0)
                var now = HTTPAnswer(status: 0, body: "")
                deadline = Date().addingTimeInterval(60)
                while Date() < deadline {
                    now = try httpGet(ports[out], "/ready", timeout: 3)
                    if now.status == 200 { break }
                    usleep(300_000)
                }
                #expect(now.status == 200, "the left-out engine takes a partition over: \(now.body)")
            }
        }
    }
}
