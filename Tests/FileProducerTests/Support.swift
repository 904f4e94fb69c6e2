import FileProducer
import Foundation
import Logging

/// A logger that drops everything (the tests assert on behaviour, not log text).
let quietLogger: Logger = {
    var l = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
    l.logLevel = .critical
    return l
}()

/// Appends raw bytes to `path` (creating it).
func append(_ path: String, _ bytes: [UInt8]) throws {
    if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
    let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    try h.seekToEnd()
    try h.write(contentsOf: Data(bytes))
    try h.close()
}

func append(_ path: String, _ text: String) throws { try append(path, Array(text.utf8)) }

/// Drives a tailer until it is idle twice in a row, collecting lines (as strings), too-long
/// lines and position changes.
struct Drained {
    var lines: [TailedLine] = []
    var tooLong: [TailedLine] = []
    var changes: [TailChange] = []
    var texts: [String] { lines.map { String(decoding: $0.bytes, as: UTF8.self) } }
}

func drain(_ tailer: FileTailer, maxSteps: Int = 1_000_000) throws -> Drained {
    var out = Drained()
    var idle = 0
    for _ in 0..<maxSteps {
        switch try tailer.next() {
        case .line(let l): out.lines.append(l); idle = 0
        case .tooLong(let l): out.tooLong.append(l); idle = 0
        case .position(_, let c): out.changes.append(c); idle = 0
        case .idle:
            idle += 1
            if idle >= 2 { return out }
        }
    }
    return out
}

/// A LogHandler that keeps each message as `level message`, for tests that check what is logged.
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
        lock.lock()
        lines.append("\(event.level) \(event.message)")
        lock.unlock()
    }

    /// The messages logged at `level`.
    func messages(at level: Logger.Level) -> [String] {
        lock.lock()
        defer { lock.unlock() }
        return lines.filter { $0.hasPrefix("\(level) ") }
    }

    /// A logger writing to this handler.
    var logger: Logger {
        Logger(label: "test", factory: { _ in self })
    }
}
