import Foundation

/// The outcome of a finished child process.
public struct ProcessResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

/// Runs a program to completion with a deadline, capturing its output. A child that outlives
/// the deadline is killed by its PID (SIGKILL) and reported with status -9.
///
/// - Parameters:
///   - executable: absolute path, or a name looked up in PATH through /usr/bin/env.
///   - arguments: the arguments.
///   - environment: extra variables merged over this process's environment.
///   - timeout: seconds before the child is killed.
@discardableResult
public func runProcess(_ executable: String, _ arguments: [String],
                       environment: [String: String] = [:],
                       timeout: TimeInterval = 120) throws -> ProcessResult {
    let process = Process()
    if executable.hasPrefix("/") {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
    } else {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [executable] + arguments
    }
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    process.environment = env
    let outURL = FileManager.default.temporaryDirectory.appendingPathComponent("tm-out-\(UUID().uuidString)")
    let errURL = FileManager.default.temporaryDirectory.appendingPathComponent("tm-err-\(UUID().uuidString)")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    defer {
        try? FileManager.default.removeItem(at: outURL)
        try? FileManager.default.removeItem(at: errURL)
    }
    let outHandle = try FileHandle(forWritingTo: outURL)
    let errHandle = try FileHandle(forWritingTo: errURL)
    process.standardOutput = outHandle
    process.standardError = errHandle
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let deadline = Date().addingTimeInterval(timeout)
    var killed = false
    while process.isRunning {
        if Date() > deadline {
            kill(process.processIdentifier, SIGKILL)
            killed = true
            break
        }
        usleep(20_000)
    }
    process.waitUntilExit()
    try? outHandle.close()
    try? errHandle.close()
    let out = (try? String(contentsOf: outURL, encoding: .utf8)) ?? ""
    let err = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
    return ProcessResult(status: killed ? -9 : process.terminationStatus, stdout: out, stderr: err)
}

/// Runs a Python helper from `tools/` (e.g. `tools/kafka_check.py`) with python3.
@discardableResult
public func runPythonTool(_ script: String, _ arguments: [String], timeout: TimeInterval = 300) throws -> ProcessResult {
    let path = LocalStack.packageRoot.appendingPathComponent("tools").appendingPathComponent(script).path
    return try runProcess("python3", [path] + arguments, timeout: timeout)
}
