import Foundation
import TestSupport
import Testing

/// `--until-idle` across a broker outage (found by tools/chaos.py's broker scenario): the engine
/// loses its partitions when the broker is down past the session timeout; the wait for the next
/// assignment must not count as idle time, or the engine exits 0 ("idle and everything
/// committed") and leaves the records that arrive after the outage unread.
@Suite("etl-engine across a broker outage", .serialized)
struct BrokerOutageTests {
    @Test("partitions lost while the broker is down: --until-idle waits for the next assignment and reads what follows")
    func untilIdleSurvivesLostPartitions() throws {
        let shared = try LocalStack.current()
        try withTemporaryDirectory { dir in
            // A private dev broker: taking the shared one down would break tests running beside this one.
            let control = dir.appendingPathComponent("kafka.control").path
            let bootstrapFile = dir.appendingPathComponent("kafka.bootstrap").path
            let broker = Process()
            broker.executableURL = productsDirectory.appendingPathComponent("etl-devbroker")
            broker.arguments = ["--bootstrap-file", bootstrapFile, "--control", control]
            broker.standardOutput = FileHandle.nullDevice
            try broker.run()
            defer { broker.terminate(); broker.waitUntilExit() }
            let deadline = Date().addingTimeInterval(30)
            while !(FileManager.default.fileExists(atPath: bootstrapFile) && FileManager.default.fileExists(atPath: control)),
                  Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
            let bootstrap = try String(contentsOfFile: bootstrapFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let stack = LocalStack(kafkaBootstrap: bootstrap, s3Endpoint: shared.s3Endpoint, stateDirectory: dir)
            try runOutage(stack: stack, control: control, dir: dir.appendingPathComponent("engine"))
        }
    }

    private func runOutage(stack: LocalStack, control: String, dir: URL) throws {
        @Sendable func ctl(_ command: String) throws {
            let r = try runPythonTool("devbroker_ctl.py", [control, command], timeout: 30)
            #expect(r.status == 0 && r.stdout.contains("ok"), "control '\(command)': \(r.stdout) \(r.stderr)")
        }
        do {
            let setup = try EngineSetup(stack: stack, topic: uniqueName("outage"), group: uniqueName("g"), directory: dir,
                                        maxRecords: 2000, maxAge: "1s")
            try setup.produce(count: 10_000)
            let engine = Mutex2<[ProcessResult]>([])
            // librdkafka backs reconnects off up to 10 s (reconnect.backoff.max.ms): after the
            // broker returns, the rejoin could then land after the idle exit of a correct
            // engine too. 1 s keeps the test about the engine, not about the backoff.
            let env = EngineSetup.awsEnvironment.merging([
                "TIDEMARK_KAFKA_SESSION_TIMEOUT": "3s",
                "TIDEMARK_KAFKA_PROPERTIES": "reconnect.backoff.max.ms=1000",
            ]) { $1 }
            DispatchQueue.concurrentPerform(iterations: 2) { i in
                if i == 0 {
                    // Idle 14 s: without the fix it expires ~5 s after the partitions are lost
                    // (down at 8 s + 3 s session + detection), while the broker is still down.
                    if let r = try? runProcess(productsDirectory.appendingPathComponent("etl-engine").path,
                                               ["--config", setup.configPath, "--until-idle", "14s"],
                                               environment: env, timeout: 180) { engine.append(r) }
                } else {
                    do {
                        Thread.sleep(forTimeInterval: 8)      // joined, the first 10,000 read and committed
                        try ctl("broker-down 1")
                        Thread.sleep(forTimeInterval: 14)     // past the 3 s session: partitions lost
                        try ctl("broker-up 1")
                        try setup.produce(count: 10_000, seed: 2, startSerial: 10_000)
                    } catch {
                        Issue.record("fault schedule failed: \(error)")
                    }
                }
            }
            let run = try #require(engine.value.first)
            #expect(run.status == 0, "engine: \(run.stderr.suffix(1500))")
            #expect(run.stderr.contains("partitions lost"), "the outage must have cost the engine its partitions")
            let v = try setup.verify(expect: 20_000)
            #expect(v.ok, "records after the outage must be read before the idle exit: \(v.raw)\n\(run.stderr.suffix(6000))")
        }
    }
}
