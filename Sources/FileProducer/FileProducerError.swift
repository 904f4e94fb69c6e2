import KafkaSource

#if canImport(Glibc)
import Glibc
#endif

/// Why `etl-produce` or `etl-loggen` failed, with the file (and byte offset) it concerns.
///
/// ``isStartupError`` separates problems an operator must fix before a restart can succeed
/// (permissions, a corrupt checkpoint, a state directory in use; exit code 2) from failures
/// while running (Kafka delivery, I/O; exit code 1).
public enum FileProducerError: Error, CustomStringConvertible, Sendable {
    /// A system call on `path` failed; `errno` is the C error number.
    case io(path: String, operation: String, errno: Int32)
    /// `path` (the log file, a rotated sibling or the state directory) may not be read or written.
    case permissionDenied(path: String, operation: String)
    /// The checkpoint file exists but does not decode.
    case corruptCheckpoint(path: String, reason: String)
    /// Another process holds the state directory's lock file.
    case stateDirectoryInUse(path: String)
    /// Kafka refused or failed a request while the producer was at `offset` of `path`.
    case kafka(operation: String, path: String?, offset: UInt64?, underlying: KafkaError)
    /// An option value or combination is invalid.
    case invalidOption(String)

    /// True for errors that a restart alone cannot fix (exit code 2).
    public var isStartupError: Bool {
        switch self {
        case .permissionDenied, .corruptCheckpoint, .stateDirectoryInUse, .invalidOption: return true
        case .io, .kafka: return false
        }
    }

    /// The message printed by the executables: what failed, on which path (and offset), why.
    public var description: String {
        switch self {
        case .io(let path, let operation, let code):
            return "\(operation) \(path): \(String(cString: strerror(code))) (errno \(code))"
        case .permissionDenied(let path, let operation):
            return "\(operation) \(path): permission denied (check the owner and mode of the file and its directory)"
        case .corruptCheckpoint(let path, let reason):
            return "checkpoint \(path) cannot be read: \(reason) (move it away to start over from the current file)"
        case .stateDirectoryInUse(let path):
            return "state directory lock \(path) is held by another etl-produce; one producer per state directory"
        case .kafka(let operation, let path, let offset, let underlying):
            var where_ = ""
            if let path { where_ = " at \(path)" + (offset.map { " byte \($0)" } ?? "") }
            return "kafka \(operation)\(where_): \(underlying)"
        case .invalidOption(let text):
            return text
        }
    }

    /// Maps a failed system call's `errno` to ``permissionDenied`` (EACCES, EPERM) or ``io``.
    static func fromErrno(_ code: Int32, path: String, operation: String) -> FileProducerError {
        code == EACCES || code == EPERM ? .permissionDenied(path: path, operation: operation)
            : .io(path: path, operation: operation, errno: code)
    }
}
