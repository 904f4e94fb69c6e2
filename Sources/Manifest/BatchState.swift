/// The durable state of a batch in the manifest. See docs/protocol.md ("States").
public enum BatchState: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// The Parquet (and dead-letter) files are fsynced in the staging directory.
    case staged = "STAGED"
    /// A multipart upload exists; its id and uploaded parts are recorded.
    case uploading = "UPLOADING"
    /// The object exists in the store and is ours.
    case uploaded = "UPLOADED"
    /// Kafka's committed offset for the partition is at least `end + 1`.
    case committed = "COMMITTED"
    /// The staged bytes were lost or corrupt; the offsets were not committed.
    case abandoned = "ABANDONED"
    /// Another writer's object owns this start offset.
    case superseded = "SUPERSEDED"

    public var description: String { rawValue }

    /// Whether no transition leaves this state.
    public var isFinal: Bool { self == .committed || self == .abandoned || self == .superseded }

    /// The legal transitions of docs/protocol.md. This is the single place they are defined;
    /// ``Manifest/transition(batchID:from:to:changes:event:)`` refuses any other.
    public func canTransition(to next: BatchState) -> Bool {
        switch (self, next) {
        case (.staged, .uploading), (.staged, .uploaded), (.staged, .abandoned), (.staged, .superseded):
            return true
        case (.uploading, .uploading), (.uploading, .uploaded), (.uploading, .superseded), (.uploading, .abandoned):
            return true
        case (.uploaded, .committed), (.uploaded, .abandoned):
            // UPLOADED -> ABANDONED: the object vanished (or was replaced) before the offsets were
            // committed; the records are read again.
            return true
        default:
            return false
        }
    }
}
