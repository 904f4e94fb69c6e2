import Foundation

/// The local Kafka + S3 stack started by `tools/stack up` (a dev broker and moto_server on
/// 127.0.0.1), as seen by tests.
///
/// `tools/stack up` writes the addresses into a state directory: `$TIDEMARK_STACK_DIR`, or
/// `.stack/` at the package root. Integration tests read it here; they fail (never skip) with a
/// message naming the command to run when the stack is not up, because `make test` always
/// brings it up.
public struct LocalStack: Sendable {
    /// `host:port` of the dev broker (`etl-devbroker`).
    public let kafkaBootstrap: String
    /// `http://127.0.0.1:PORT` of moto_server.
    public let s3Endpoint: String
    /// The state directory the addresses were read from.
    public let stateDirectory: URL

    /// A stack made of given addresses (e.g. a test's private dev broker beside the shared moto).
    public init(kafkaBootstrap: String, s3Endpoint: String, stateDirectory: URL) {
        self.kafkaBootstrap = kafkaBootstrap
        self.s3Endpoint = s3Endpoint
        self.stateDirectory = stateDirectory
    }

    public struct NotRunning: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// The package root (the directory holding Package.swift).
    public static let packageRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
                return url
            }
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }()

    /// Reads the running stack's addresses.
    /// - Throws: ``NotRunning`` with instructions when `tools/stack up` has not been run.
    public static func current() throws -> LocalStack {
        let env = ProcessInfo.processInfo.environment
        let dir = env["TIDEMARK_STACK_DIR"].map { URL(fileURLWithPath: $0) }
            ?? packageRoot.appendingPathComponent(".stack")
        func read(_ name: String) throws -> String {
            let url = dir.appendingPathComponent(name)
            guard let text = try? String(contentsOf: url, encoding: .utf8) else {
                throw NotRunning(description: """
                    local stack not running: \(url.path) is missing. Run `tools/stack up` \
                    (or `make test`, which brings the stack up and down around the tests).
                    """)
            }
            return text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return LocalStack(kafkaBootstrap: try read("kafka.bootstrap"),
                          s3Endpoint: try read("s3.endpoint"),
                          stateDirectory: dir)
    }
}

/// A unique, lower-case name for a test resource (topic, bucket, group).
public func uniqueName(_ prefix: String) -> String {
    let suffix = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(12)
    return "\(prefix)-\(suffix)"
}

/// A fresh temporary directory, removed when `body` returns.
public func withTemporaryDirectory<T>(_ body: (URL) throws -> T) throws -> T {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("tidemark-test-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(url)
}
