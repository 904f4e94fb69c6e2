/// Options of ``FileProducer`` (the flags of `etl-produce`).
public struct FileProducerOptions: Sendable {
    /// Where each line goes.
    public enum Partitioning: Sendable, Equatable {
        /// Every line to this partition.
        case fixed(Int32)
        /// Key = the line's serial (bytes before the first space); partition = Kafka's murmur2
        /// partitioner over the topic's partition count (``KafkaPartitioner``).
        case keySerial
    }

    /// When ``FileProducer/run(stop:)`` returns on its own.
    public enum ExitMode: Sendable, Equatable {
        /// Only on a stop request (SIGTERM/SIGINT).
        case never
        /// At the end of the followed file (after rotated files were finished); a partial last
        /// line stays unsent. A missing file is waited for.
        case atEOF
        /// Once no new line arrived for this long (a missing file counts as idle).
        case idle(Duration)
    }

    /// The followed log file (`--file`).
    public var file: String
    /// The Kafka topic (`--topic`).
    public var topic: String
    /// Bootstrap servers (`--brokers`).
    public var brokers: String
    /// Where the checkpoint, the skipped-lines list and the lock live (`--state`).
    public var stateDirectory: String
    /// `--partition P` (default 0) or `--key serial`.
    public var partitioning: Partitioning = .fixed(0)
    /// Longer lines are skipped (not sent), counted, logged, and listed in `DIR/skipped.jsonl`.
    public var maxLineBytes = 1 << 20
    /// Flush + checkpoint after this many lines...
    public var checkpointLines = 10_000
    /// ...or this long after the first line not yet checkpointed.
    public var checkpointInterval: Duration = .seconds(1)
    /// Sleep between polls of the file at its end.
    public var pollInterval: Duration = .milliseconds(50)
    /// How long the first line of a file shorter than 1 KiB waits before the file is
    /// fingerprinted over fewer bytes (``FileTailer/fingerprintGrace``).
    public var fingerprintGrace: Duration = .seconds(1)
    /// `--exit-at-eof`, `--until-idle D`, or run until stopped.
    public var exitMode: ExitMode = .never
    /// librdkafka producer properties; defaults `compression.type=zstd`, `linger.ms=20`, and
    /// `message.max.bytes` large enough for `maxLineBytes` plus headers. Set values win.
    public var kafkaProperties: [String: String] = [:]
    /// Records read from the end of each partition at start (the resume rule uses the newest
    /// record from the current file among them).
    public var tailRecords = 16
    /// Where a start without a checkpoint begins (`--start-from`; default: the oldest rotated
    /// sibling, so nothing on disk is left out).
    public var startFrom: StartFrom = .oldest
    /// `fnmatch` patterns naming the rotated siblings in the followed file's directory
    /// (`--rotated-glob`); empty: ``SiblingRule``'s default (`BASE.N`, `BASE-DATE`, ...).
    public var rotatedGlobs: [String] = []
    /// Timeout for flush and for the start-up reads (metadata, partition tails).
    public var kafkaTimeout: Duration = .seconds(60)

    /// Options with the defaults above for everything but the four required values.
    public init(file: String, topic: String, brokers: String, stateDirectory: String) {
        self.file = file
        self.topic = topic
        self.brokers = brokers
        self.stateDirectory = stateDirectory
    }
}
