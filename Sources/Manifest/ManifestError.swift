/// Errors from the manifest, each naming the file or batch at fault.
public enum ManifestError: Error, CustomStringConvertible, Sendable {
    /// Another process holds the manifest's exclusive lock.
    case locked(path: String, holderPID: Int32?)
    /// The database failed `PRAGMA quick_check`.
    case corrupt(path: String, detail: String)
    /// The manifest file or its directory cannot be opened or created.
    case cannotOpen(path: String, reason: String)
    /// A state change that docs/protocol.md does not allow.
    case illegalTransition(batchID: Int64, from: BatchState, to: BatchState)
    /// The batch is not in the state the caller expected (someone else changed it).
    case stateMismatch(batchID: Int64, expected: BatchState, actual: BatchState)
    /// No batch with this id.
    case noSuchBatch(Int64)
    /// A new batch overlaps a live batch of the same partition.
    case overlap(topic: String, partition: Int32, start: Int64, end: Int64, existingBatchID: Int64)
    /// An SQLite error, with SQLite's own message.
    case database(path: String, message: String)

    public var description: String {
        switch self {
        case let .locked(path, pid):
            let holder = pid.map { "process \($0)" } ?? "another process"
            return "manifest \(path) is locked by \(holder) (an etl-engine or etl-recover is running on it); stop it first"
        case let .corrupt(path, detail):
            return "manifest \(path) failed its integrity check: \(detail)"
        case let .cannotOpen(path, reason):
            return "cannot open manifest \(path): \(reason)"
        case let .illegalTransition(id, from, to):
            return "batch \(id): illegal state transition \(from) -> \(to)"
        case let .stateMismatch(id, expected, actual):
            return "batch \(id): expected state \(expected) but the manifest says \(actual)"
        case let .noSuchBatch(id):
            return "no batch \(id) in the manifest"
        case let .overlap(topic, p, s, e, existing):
            return "batch \(topic)[\(p)] offsets \(s)...\(e) overlaps live batch \(existing)"
        case let .database(path, message):
            return "manifest \(path): \(message)"
        }
    }
}
