import Foundation
@testable import ObjectStore
import Synchronization
import TestSupport

/// A running `tools/aws_metadata_emulator.py` (IMDSv2 or ECS container credentials) on
/// 127.0.0.1, stopped by PID.
final class MetadataEmulator {
    let process: Process
    let port: Int
    var endpoint: String { "http://127.0.0.1:\(port)" }
    private let control = CurlHTTPClient(caBundle: nil, maxIdleConnections: 1)

    struct Failed: Error, CustomStringConvertible { var description: String }

    /// Starts the emulator in `mode` (`imds` or `ecs`), issuing credentials that expire after
    /// `expirySeconds`.
    init(mode: String, expirySeconds: Double = 3600, authToken: String? = nil) throws {
        let script = LocalStack.packageRoot.appendingPathComponent("tools/aws_metadata_emulator.py").path
        (process, port) = try startPortPrintingTool(
            script, ["--mode", mode, "--port", "0", "--expiry-seconds", "\(expirySeconds)"] + (authToken.map { ["--auth-token", $0] } ?? []),
            what: "metadata emulator")
    }

    /// `credentials_served`, `tokens_issued`, `rejected`.
    func stats() throws -> [String: Int] {
        let response = try control.perform(HTTPRequest(method: "GET", url: endpoint + "/__emulator__/stats", headers: [],
                                                       body: nil, connectTimeout: 5, timeout: 10,
                                                       maxResponseBytes: 1 << 16))
        return try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Int] ?? [:]
    }

    /// A raw request to the emulator (to prove what it refuses).
    func request(_ method: String, _ path: String, headers: [(String, String)] = []) throws -> HTTPResponse {
        try control.perform(HTTPRequest(method: method, url: endpoint + path, headers: headers,
                                        body: method == "PUT" ? .bytes([]) : nil, connectTimeout: 5, timeout: 10,
                                        maxResponseBytes: 1 << 16))
    }

    /// Stops the emulator by its PID.
    func stop() {
        control.close()
        // SIGKILL, as for FaultProxy: SIGTERM may be blocked in a child of a dispatch thread.
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop() }
}

/// An environment that sees no real AWS settings: HOME, the shared files and IMDS all point
/// into `directory` or are disabled. Tests add the variables they exercise.
func isolatedAWSEnvironment(_ directory: URL) -> [String: String] {
    [
        "HOME": directory.path,
        "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
        "AWS_CONFIG_FILE": directory.appendingPathComponent("config").path,
        "AWS_SHARED_CREDENTIALS_FILE": directory.appendingPathComponent("credentials").path,
        "AWS_EC2_METADATA_DISABLED": "true",
    ]
}

/// A provider whose answers the test scripts: each fetch pops the next result (the last one
/// repeats), and fetches are counted.
final class ScriptedProvider: AWSCredentialProvider {
    struct Refused: Error, CustomStringConvertible { var description: String }

    let providerDescription: String
    private let state: Mutex<(results: [Result<AWSCredentials, CredentialError>], fetches: Int)>

    init(_ description: String, results: [Result<AWSCredentials, CredentialError>]) {
        providerDescription = description
        state = Mutex((results, 0))
    }

    var fetches: Int { state.withLock { $0.fetches } }

    /// Replaces the remaining results.
    func script(_ results: [Result<AWSCredentials, CredentialError>]) { state.withLock { $0.results = results } }

    func fetchCredentials() throws -> AWSCredentials {
        let result = state.withLock { s -> Result<AWSCredentials, CredentialError> in
            s.fetches += 1
            return s.results.count > 1 ? s.results.removeFirst() : s.results[0]
        }
        return try result.get()
    }
}
