import CRdKafka
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One line of the dev broker's fault-injection control protocol (`etl-devbroker --control`).
///
/// Grammar (one command per line, words separated by spaces, case-insensitive names):
///
///     ping
///     broker-down <broker id>
///     broker-up <broker id>
///     rtt <broker id> <milliseconds>
///     push-errors <api> <error> <count>      the next <count> requests of <api> fail with <error>
///     clear-errors <api>
///
/// `<api>` is a Kafka request name (`Produce`, `Fetch`, `OffsetCommit`, `JoinGroup`, ... — see
/// ``MockCluster/APIKey``) or its numeric API key; `<error>` is a Kafka error name as librdkafka
/// spells it without its prefix (`REBALANCE_IN_PROGRESS`, `NOT_COORDINATOR`,
/// `REQUEST_TIMED_OUT`, ...) or a numeric error code. Each command is answered with one line:
/// `ok` or `error <text>`.
public enum MockControlCommand: Equatable, Sendable {
    case ping
    case brokerDown(Int32)
    case brokerUp(Int32)
    case rtt(broker: Int32, milliseconds: Int)
    case pushErrors(api: MockCluster.APIKey, code: Int32, count: Int)
    case clearErrors(api: MockCluster.APIKey)

    /// A command line that cannot be parsed; the text says why (it is sent back after `error `).
    public struct ParseError: Error, CustomStringConvertible, Equatable, Sendable {
        public var description: String
    }

    /// The protocol summary printed by `etl-devbroker --help` and in error answers.
    public static let usage = "ping | broker-down ID | broker-up ID | rtt ID MS | push-errors API ERROR COUNT | clear-errors API"

    /// Parses one line (leading/trailing blanks ignored).
    public static func parse(_ line: String) throws(ParseError) -> MockControlCommand {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
        guard let verb = words.first?.lowercased() else { throw ParseError(description: "empty command; expected \(usage)") }
        func arity(_ n: Int) throws(ParseError) {
            guard words.count == n + 1 else {
                throw ParseError(description: "\(verb) takes \(n) argument\(n == 1 ? "" : "s"), got \(words.count - 1)")
            }
        }
        func broker(_ s: String) throws(ParseError) -> Int32 {
            guard let id = Int32(s), id >= 1 else { throw ParseError(description: "'\(s)' is not a broker id (1, 2, ...)") }
            return id
        }
        switch verb {
        case "ping":
            try arity(0)
            return .ping
        case "broker-down":
            try arity(1)
            return .brokerDown(try broker(words[1]))
        case "broker-up":
            try arity(1)
            return .brokerUp(try broker(words[1]))
        case "rtt":
            try arity(2)
            guard let ms = Int(words[2]), ms >= 0, ms <= 600_000 else {
                throw ParseError(description: "'\(words[2])' is not a round-trip time in milliseconds (0...600000)")
            }
            return .rtt(broker: try broker(words[1]), milliseconds: ms)
        case "push-errors":
            try arity(3)
            let api = try parseAPI(words[1])
            let code = try parseError(words[2])
            guard let count = Int(words[3]), count >= 1, count <= 100_000 else {
                throw ParseError(description: "'\(words[3])' is not a count (1...100000)")
            }
            return .pushErrors(api: api, code: code, count: count)
        case "clear-errors":
            try arity(1)
            return .clearErrors(api: try parseAPI(words[1]))
        default:
            throw ParseError(description: "unknown command '\(words[0])'; expected \(usage)")
        }
    }

    static func parseAPI(_ s: String) throws(ParseError) -> MockCluster.APIKey {
        if let n = Int16(s) {
            guard let api = MockCluster.APIKey(rawValue: n) else {
                throw ParseError(description: "API key \(n) is not one the control channel knows (\(MockCluster.APIKey.allNames))")
            }
            return api
        }
        guard let api = MockCluster.APIKey.allCases.first(where: { $0.name.lowercased() == s.lowercased() }) else {
            throw ParseError(description: "unknown API '\(s)'; expected one of \(MockCluster.APIKey.allNames) or a number")
        }
        return api
    }

    static func parseError(_ s: String) throws(ParseError) -> Int32 {
        if let n = Int32(s) { return n }
        var name = s.uppercased()
        if name.hasPrefix("RD_KAFKA_RESP_ERR_") { name.removeFirst("RD_KAFKA_RESP_ERR_".count) }
        // Kafka renamed error 6 after librdkafka 2.0.2's table was written; accept both names.
        if name == "NOT_LEADER_OR_FOLLOWER" { name = "NOT_LEADER_FOR_PARTITION" }
        guard let code = kafkaErrorCodes[name], code > 0 else {
            throw ParseError(description: "unknown Kafka error '\(s)' (use a broker error name such as REBALANCE_IN_PROGRESS, or a number)")
        }
        return code
    }

    /// Kafka error names (librdkafka's table, `rd_kafka_get_err_descs`) → codes.
    static let kafkaErrorCodes: [String: Int32] = {
        var descs: UnsafePointer<rd_kafka_err_desc>?
        var count = 0
        rd_kafka_get_err_descs(&descs, &count)
        var out: [String: Int32] = [:]
        guard let descs else { return out }
        for i in 0..<count {
            let d = descs[i]
            guard let name = d.name else { continue }
            out[String(cString: name)] = d.code.rawValue
        }
        return out
    }()
}

extension MockCluster.APIKey {
    /// The Kafka protocol name of the request (`OffsetCommit`, `JoinGroup`, ...).
    public var name: String {
        switch self {
        case .produce: "Produce"
        case .fetch: "Fetch"
        case .listOffsets: "ListOffsets"
        case .metadata: "Metadata"
        case .offsetCommit: "OffsetCommit"
        case .offsetFetch: "OffsetFetch"
        case .findCoordinator: "FindCoordinator"
        case .joinGroup: "JoinGroup"
        case .heartbeat: "Heartbeat"
        case .leaveGroup: "LeaveGroup"
        case .syncGroup: "SyncGroup"
        case .initProducerId: "InitProducerId"
        }
    }

    static var allNames: String { allCases.map(\.name).joined(separator: ", ") }
}

extension MockCluster {
    /// Executes a control command; returns the answer line (`ok` or `error <text>`).
    public func apply(_ command: MockControlCommand) -> String {
        do {
            switch command {
            case .ping: break
            case .brokerDown(let id): try setBrokerDown(id)
            case .brokerUp(let id): try setBrokerUp(id)
            case .rtt(let id, let ms): try setBrokerRTT(id, milliseconds: ms)
            case .pushErrors(let api, let code, let count):
                try pushRequestErrors(api, errors: Array(repeating: code, count: count))
            case .clearErrors(let api): try clearRequestErrors(api)
            }
            return "ok"
        } catch {
            return "error \(error)"
        }
    }

    /// Parses and executes one control line; returns the answer line.
    public func handleControlLine(_ line: String) -> String {
        do {
            return apply(try MockControlCommand.parse(line))
        } catch {
            return "error \(error.description)"
        }
    }
}

/// Serves the control protocol (``MockControlCommand``) on a Unix-domain stream socket: a client
/// connects, writes command lines, and reads one answer line per command. The socket file is
/// created with mode 0600 (it can break the broker on purpose) and removed by ``close()``.
public final class MockControlServer: @unchecked Sendable {
    // @unchecked Sendable: `fd` is written in init and close() only; the accept thread reads it.
    private var fd: Int32
    public let path: String
    private let handle: @Sendable (String) -> String

    /// Binds `path` (an existing socket file there is replaced) and starts serving on a thread.
    public init(path: String, handle: @escaping @Sendable (String) -> String) throws {
        self.path = path
        self.handle = handle
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard bytes.count < capacity else {
            throw MockClusterError(operation: "control socket \(path)", message: "path longer than \(capacity - 1) bytes")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard s >= 0 else { throw Self.posixError("socket") }
        unlink(path)
        let old = umask(0o177)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        umask(old)
        guard rc == 0 else {
            let e = Self.posixError("bind \(path)")
            Glibc.close(s)
            throw e
        }
        guard listen(s, 8) == 0 else {
            let e = Self.posixError("listen \(path)")
            Glibc.close(s)
            throw e
        }
        fd = s
        let thread = Thread { [self] in self.acceptLoop(listener: s) }
        thread.start()
    }

    /// Stops accepting and removes the socket file. Idempotent.
    public func close() {
        guard fd >= 0 else { return }
        shutdown(fd, Int32(SHUT_RDWR))
        Glibc.close(fd)
        fd = -1
        unlink(path)
    }

    private static func posixError(_ op: String) -> MockClusterError {
        MockClusterError(operation: op, message: String(cString: strerror(errno)))
    }

    private func acceptLoop(listener: Int32) {
        while true {
            let c = accept(listener, nil, nil)
            if c < 0 {
                if errno == EINTR { continue }
                return   // closed
            }
            let thread = Thread { [self] in self.serve(connection: c) }
            thread.start()
        }
    }

    private func serve(connection c: Int32) {
        defer { Glibc.close(c) }
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(c, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            pending.append(contentsOf: buffer[0..<n])
            while let nl = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<nl], as: UTF8.self)
                pending.removeSubrange(...nl)
                if line.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { continue }
                let answer = Array((handle(line) + "\n").utf8)
                var off = 0
                while off < answer.count {
                    let w = answer[off...].withUnsafeBytes { write(c, $0.baseAddress, $0.count) }
                    if w < 0 && errno == EINTR { continue }
                    if w <= 0 { return }
                    off += w
                }
            }
            if pending.count > 65_536 { return }   // not a line protocol client
        }
    }
}
