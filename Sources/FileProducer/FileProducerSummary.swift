/// What one run did, printed as JSON by `etl-produce` when it exits.
public struct FileProducerSummary: Sendable, Codable, Equatable {
    /// Records sent and acknowledged.
    public var sent = 0
    /// Lines read again after a restart and not sent because Kafka already held them (the
    /// resume rule).
    public var alreadyInKafka = 0
    /// Lines over `maxLineBytes`, not sent.
    public var tooLong = 0
    /// Files opened (the first one included).
    public var files = 0
    /// Checkpoints written.
    public var checkpoints = 0
    /// The last checkpoint written.
    public var checkpoint: Checkpoint?
}
