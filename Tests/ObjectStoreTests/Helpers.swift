import Foundation
import Logging
@testable import ObjectStore
import TestSupport
import Testing

/// Credentials moto accepts (it does not check signatures).
let motoCredentials = AWSCredentials(accessKeyID: "testing", secretAccessKey: "testing")

/// An S3Store on a fresh bucket of the local moto_server (or through a proxy in front of it).
func makeS3Store(endpoint: String? = nil, bucket: String? = nil, logger: Logger? = nil,
                 configure: (inout S3Configuration) -> Void = { _ in }) throws -> S3Store
{
    let stack = try LocalStack.current()
    let bucketName = bucket ?? uniqueName("os")
    // Create the bucket directly on moto, never through a fault proxy.
    let direct = try S3Store(configuration: S3Configuration(bucket: bucketName, endpoint: stack.s3Endpoint,
                                                            credentials: motoCredentials))
    try direct.createBucket()
    direct.close()
    var configuration = S3Configuration(bucket: bucketName, endpoint: endpoint ?? stack.s3Endpoint,
                                        credentials: motoCredentials, retryDeadline: 60, retryBaseDelay: 0.01,
                                        retryMaxDelay: 0.1, connectTimeout: 5, requestTimeout: 20)
    configure(&configuration)
    return try S3Store(configuration: configuration, logger: logger)
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
func testBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed | 1
    var out = [UInt8](repeating: 0, count: count)
    out.withUnsafeMutableBytes { buffer in
        var i = 0
        while i < count {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            var word = state
            for _ in 0..<8 where i < count {
                buffer[i] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                i += 1
            }
        }
    }
    return out
}

/// Writes `bytes` to a file in `directory` and returns its path.
func writeFile(_ bytes: [UInt8], in directory: URL, name: String = "data.bin") throws -> String {
    let url = directory.appendingPathComponent(name)
    try Data(bytes).write(to: url)
    return url.path
}

/// A running `tools/s3_fault_proxy.py` in front of moto_server, stopped by PID.
/// Starts `python3 script arguments` (a test tool that binds 127.0.0.1 and prints `PORT <n>` as
/// its first line) and returns the process and the port; a tool that does not start is killed
/// by its PID and reported as `what`.
func startPortPrintingTool(_ script: String, _ arguments: [String], what: String) throws -> (Process, Int) {
    struct Failed: Error, CustomStringConvertible { var description: String }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", script] + arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.standardError
    try process.run()
    var text = ""
    while !text.contains("\n") {
        let data = pipe.fileHandleForReading.availableData
        if data.isEmpty { break }
        text += String(decoding: data, as: UTF8.self)
    }
    guard let line = text.split(separator: "\n").first, line.hasPrefix("PORT "), let port = Int(line.dropFirst(5)) else {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        throw Failed(description: "\(what) did not start: \(text)")
    }
    return (process, port)
}

final class FaultProxy {
    let process: Process
    let port: Int
    var endpoint: String { "http://127.0.0.1:\(port)" }
    private let control = CurlHTTPClient(caBundle: nil, maxIdleConnections: 1)

    struct Failed: Error, CustomStringConvertible { var description: String }

    /// Starts the proxy with `rules` (JSON list, see the tool's docstring).
    init(rules: String = "[]", verifyChecksums: Bool = false) throws {
        let stack = try LocalStack.current()
        let script = LocalStack.packageRoot.appendingPathComponent("tools/s3_fault_proxy.py").path
        (process, port) = try startPortPrintingTool(
            script, ["--upstream", stack.s3Endpoint, "--port", "0", "--rules", rules] + (verifyChecksums ? ["--verify-checksums"] : []),
            what: "fault proxy")
    }

    /// Replaces the rules and clears the request log.
    func setRules(_ rules: String) throws {
        _ = try control.perform(HTTPRequest(method: "POST", url: endpoint + "/__proxy__/rules", headers: [],
                                            body: .bytes(Array(rules.utf8)), connectTimeout: 5, timeout: 10,
                                            maxResponseBytes: 1 << 20))
    }

    /// Every request the proxy saw since the rules were last set.
    func log() throws -> [(method: String, path: String, query: [String: String], action: String,
                           headers: [String: String])] {
        let response = try control.perform(HTTPRequest(method: "GET", url: endpoint + "/__proxy__/log", headers: [],
                                                       body: nil, connectTimeout: 5, timeout: 10,
                                                       maxResponseBytes: 64 << 20))
        let entries = try JSONSerialization.jsonObject(with: Data(response.body)) as? [[String: Any]] ?? []
        return entries.map {
            ($0["method"] as? String ?? "", $0["path"] as? String ?? "", $0["query"] as? [String: String] ?? [:],
             $0["action"] as? String ?? "", $0["headers"] as? [String: String] ?? [:])
        }
    }

    /// Stops the proxy by its PID.
    func stop() {
        control.close()
        // SIGKILL: a child spawned from a libdispatch thread inherits its blocked signal mask,
        // so SIGTERM may never be delivered. The proxy keeps no state worth a clean exit.
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
    }

    deinit { stop() }
}

/// A LogHandler that keeps every message and its metadata as text.
final class CapturingLogHandler: LogHandler, @unchecked Sendable {
    // @unchecked Sendable: `lines` is only touched under `lock`.
    private let lock = NSLock()
    private var lines: [String] = []
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = self.metadata.merging(event.metadata ?? [:]) { $1 }
        let error = event.error.map { " error=\($0)" } ?? ""
        lock.lock()
        lines.append("\(event.level) \(event.message) \(all)\(error)")
        lock.unlock()
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return lines.joined(separator: "\n")
    }

    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return lines.count
    }
}
