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
        let stack = try LocalStack.current()
        let control = stack.stateDirectory.appendingPathComponent("kafka.control").path
        try #require(FileManager.default.fileExists(atPath: control), "tools/stack starts the dev broker with --control")
        @Sendable func ctl(_ command: String) throws {
            let r = try runPythonTool("devbroker_ctl.py", [control, command], timeout: 30)
            #expect(r.status == 0 && r.stdout.contains("ok"), "control '\(command)': \(r.stdout) \(r.stderr)")
        }
        try withTemporaryDirectory { dir in
            let setup = try EngineSetup(stack: stack, topic: uniqueName("outage"), group: uniqueName("g"), directory: dir,
                                        maxRecords: 2000, maxAge: "1s")
            try setup.produce(count: 10_000)
            let engine = Mutex2<[ProcessResult]>([])
            let env = EngineSetup.awsEnvironment.merging(["TIDEMARK_KAFKA_SESSION_TIMEOUT": "3s"]) { $1 }
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
