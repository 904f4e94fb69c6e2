import Foundation
import KafkaMock
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The dev broker's fault-injection line protocol (`etl-devbroker --control`): parsing, and
/// commands applied to a real in-process mock cluster through the Unix socket.
@Suite("dev broker control channel")
struct DevBrokerControlTests {
    @Test("well-formed lines parse to commands; names are case-insensitive; numbers are accepted")
    func parsesCommands() throws {
        #expect(try MockControlCommand.parse("ping") == .ping)
        #expect(try MockControlCommand.parse("  broker-down 1 ") == .brokerDown(1))
        #expect(try MockControlCommand.parse("broker-up 2\r") == .brokerUp(2))
        #expect(try MockControlCommand.parse("rtt 1 250") == .rtt(broker: 1, milliseconds: 250))
        #expect(try MockControlCommand.parse("push-errors OffsetCommit REBALANCE_IN_PROGRESS 3")
            == .pushErrors(api: .offsetCommit, code: 27, count: 3))
        #expect(try MockControlCommand.parse("push-errors fetch not_leader_or_follower 2")
            == .pushErrors(api: .fetch, code: 6, count: 2))
        #expect(try MockControlCommand.parse("push-errors 11 RD_KAFKA_RESP_ERR_NOT_COORDINATOR 1")
            == .pushErrors(api: .joinGroup, code: 16, count: 1))
        #expect(try MockControlCommand.parse("push-errors Produce 7 5") == .pushErrors(api: .produce, code: 7, count: 5))
        #expect(try MockControlCommand.parse("clear-errors JoinGroup") == .clearErrors(api: .joinGroup))
    }

    @Test("malformed lines are refused with a reason", arguments: [
        ("", "empty"), ("explode", "unknown command"), ("broker-down", "takes 1 argument"),
        ("broker-down 0", "not a broker id"), ("broker-down x", "not a broker id"), ("rtt 1 -5", "round-trip"),
        ("push-errors Nope REBALANCE_IN_PROGRESS 1", "unknown API"), ("push-errors 99 27 1", "API key 99"),
        ("push-errors Fetch NO_SUCH_ERROR 1", "unknown Kafka error"), ("push-errors Fetch 27 0", "not a count"),
        ("push-errors Fetch 27", "takes 3 arguments"), ("ping extra", "takes 0 arguments"),
    ])
    func refusesMalformed(_ line: String, _ why: String) {
        do {
            let c = try MockControlCommand.parse(line)
            Issue.record("'\(line)' parsed as \(c)")
        } catch {
            #expect(error.description.contains(why), "'\(line)': \(error.description)")
        }
    }

    @Test("the socket answers ok / error per line and applies commands to the mock cluster")
    func socketRoundTrip() throws {
        let cluster = try MockCluster(brokers: 1)
        defer { cluster.close() }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ctl-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock").path
        let server = try MockControlServer(path: path) { cluster.handleControlLine($0) }
        defer { server.close() }
        var st = stat()
        #expect(stat(path, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600, "control socket mode \(String(st.st_mode & 0o777, radix: 8))")
        let answers = try talk(path, ["ping", "push-errors OffsetCommit REBALANCE_IN_PROGRESS 2", "broker-down 1",
                                      "broker-up 1", "rtt 1 0", "clear-errors OffsetCommit", "broker-down 7", "bogus"])
        #expect(Array(answers.prefix(6)) == ["ok", "ok", "ok", "ok", "ok", "ok"])
        #expect(answers[6].hasPrefix("error "), "an unknown broker is an error: \(answers[6])")
        #expect(answers[7].hasPrefix("error unknown command"))
    }

    /// A minimal client (the suite's own client is tools/devbroker_ctl.py).
    private func talk(_ path: String, _ lines: [String]) throws -> [String] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", """
            import socket, sys
            s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rwb")
            for c in sys.argv[2:]:
                f.write(c.encode() + b"\\n"); f.flush(); print(f.readline().decode().strip())
            """, path] + lines
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }
}
