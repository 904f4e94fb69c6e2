import Foundation
import Synchronization

/// A profile's `credential_process`: runs the command and parses the JSON it prints
/// (`{"Version": 1, "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}`,
/// "Sourcing credentials with an external process", AWS SDKs and Tools Reference Guide).
///
/// A command without shell syntax (quotes, `$`, pipes, redirections, globs, …) is split on
/// whitespace and run directly (the executable is looked up in `PATH`); anything else runs
/// through `/bin/sh -c`, as the AWS CLI does on POSIX systems. A non-zero exit, a timeout or bad
/// JSON is a ``CredentialError`` naming the profile; the process's standard output (which holds
/// secrets) is never included, its standard error is (truncated).
public struct ProcessCredentialProvider: AWSCredentialProvider {
    public let command: String
    public let profile: String
    public let timeout: TimeInterval
    public let providerDescription: String
    private let environment: [String: String]

    public init(command: String, profile: String, environment: [String: String], timeout: TimeInterval = 60) {
        self.command = command
        self.profile = profile
        self.timeout = timeout
        self.environment = environment
        self.providerDescription = "profile \(profile) (credential_process)"
    }

    /// The executable and arguments for `command`.
    static func argv(_ command: String, path: String?) -> [String] {
        let shellSyntax = CharacterSet(charactersIn: "'\"$`\\|&;<>()*?[]{}~#!=%\n")
        let trimmed = command.trimmingCharacters(in: .whitespaces)
        if trimmed.rangeOfCharacter(from: shellSyntax) == nil {
            var words = trimmed.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            if let first = words.first, !first.contains("/") {
                for dir in (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
                    let candidate = "\(dir)/\(first)"
                    if FileManager.default.isExecutableFile(atPath: candidate) {
                        words[0] = candidate
                        return words
                    }
                }
            } else if !words.isEmpty {
                return words
            }
        }
        return ["/bin/sh", "-c", command]
    }

    private func failure(_ message: String) -> CredentialError {
        CredentialError(code: .processFailed, provider: providerDescription, message: message)
    }

    public func fetchCredentials() throws -> AWSCredentials {
        let argv = Self.argv(command, path: environment["PATH"])
        let process = Process()
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        process.environment = environment
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw failure("profile \(profile): cannot start credential_process \(argv[0]): \(error.localizedDescription)")
        }
        let pid = process.processIdentifier
        // Read both pipes concurrently so a chatty stderr cannot block the child.
        let stderrBox = Mutex(Data())
        let stderrDone = DispatchSemaphore(value: 0)
        let errHandle = err.fileHandleForReading
        Thread.detachNewThread {
            let data = errHandle.readDataToEndOfFile()
            stderrBox.withLock { $0 = data }
            stderrDone.signal()
        }
        let timedOut = Mutex(false)
        let finished = DispatchSemaphore(value: 0)
        let limit = timeout
        Thread.detachNewThread {
            if finished.wait(timeout: .now() + limit) == .timedOut {
                timedOut.withLock { $0 = true }
                kill(pid, SIGKILL)
            }
        }
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        finished.signal()
        _ = stderrDone.wait(timeout: .now() + 5)
        let stderrText = String(decoding: stderrBox.withLock { $0 }.prefix(500), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        if timedOut.withLock({ $0 }) {
            throw failure("profile \(profile): credential_process timed out after \(Int(timeout)) s and was killed")
        }
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            let how = process.terminationReason == .exit ? "exited with status \(process.terminationStatus)"
                : "was killed by signal \(process.terminationStatus)"
            throw failure("profile \(profile): credential_process \(how)"
                + (stderrText.isEmpty ? "" : "; stderr: \(stderrText)"))
        }
        let object = (try? JSONSerialization.jsonObject(with: stdout)) as? [String: Any]
        guard let object else {
            throw failure("profile \(profile): credential_process did not print a JSON object")
        }
        guard (object["Version"] as? Int) == 1 else {
            throw failure("profile \(profile): credential_process printed Version \(object["Version"].map { "\($0)" } ?? "none"), expected 1")
        }
        return try CredentialHTTP.parseJSONCredentials(Array(stdout), provider: providerDescription,
                                                       source: providerDescription, code: .processFailed)
    }
}
