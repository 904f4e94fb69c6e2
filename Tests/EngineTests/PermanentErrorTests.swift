import Foundation
import TestSupport
import Testing

/// The engine must not retry forever what retrying cannot fix: it stops with exit 5 and says
/// what to check (issue 19, item 4).
@Suite("etl-engine permanent store errors", .serialized)
struct PermanentErrorTests {
    @Test("a sink bucket that does not exist stops the engine with exit 5 naming NoSuchBucket, instead of retrying forever")
    func noSuchBucket() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let setup = try EngineSetup(stack: stack, topic: uniqueName("perm"), group: uniqueName("g"), directory: dir,
                                        sink: "s3://\(uniqueName("no-such-bucket"))/logs", maxRecords: 500)
            try setup.produce(count: 2_000, partitions: 1)
            let started = Date()
            let run = try setup.runEngine(idle: "3s", timeout: 120)
            #expect(run.status == 5, "exit \(run.status) after \(Int(Date().timeIntervalSince(started))) s: \(run.stderr.suffix(1500))")
            #expect(run.stderr.contains("NoSuchBucket"), "\(run.stderr.suffix(1500))")
            #expect(run.stderr.contains("Check [sink] url"), "\(run.stderr.suffix(1500))")
        }
    }
}
