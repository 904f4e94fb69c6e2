import CRdKafka

/// An error from the Kafka client (librdkafka), with the operation and partition it concerns.
///
/// `code` is librdkafka's `rd_kafka_resp_err_t` value: positive values are Kafka protocol error
/// codes returned by a broker, negative values are librdkafka's local errors (`RD_KAFKA_RESP_ERR__*`).
/// `message` is librdkafka's own text (`rd_kafka_err2str`, the configuration error string, or
/// the fatal error string), so callers never need to import the C module.
public struct KafkaError: Error, CustomStringConvertible, Sendable {
    /// A librdkafka error code (`rd_kafka_resp_err_t` raw value).
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }

        /// librdkafka's name for the code, e.g. `ILLEGAL_GENERATION` or `_TIMED_OUT`.
        public var name: String { String(cString: rd_kafka_err2name(rd_kafka_resp_err_t(rawValue: rawValue))) }
        public var description: String { "\(name) (\(rawValue))" }

        public static let noError = Code(rawValue: 0)
        // Kafka protocol errors (https://kafka.apache.org/protocol#protocol_error_codes).
        public static let offsetOutOfRange = Code(rawValue: 1)
        public static let unknownTopicOrPartition = Code(rawValue: 3)
        public static let leaderNotAvailable = Code(rawValue: 5)
        public static let notLeaderForPartition = Code(rawValue: 6)
        public static let requestTimedOut = Code(rawValue: 7)
        public static let networkException = Code(rawValue: 13)
        public static let coordinatorLoadInProgress = Code(rawValue: 14)
        public static let coordinatorNotAvailable = Code(rawValue: 15)
        public static let notCoordinator = Code(rawValue: 16)
        public static let illegalGeneration = Code(rawValue: 22)
        public static let unknownMemberID = Code(rawValue: 25)
        public static let rebalanceInProgress = Code(rawValue: 27)
        public static let groupAuthorizationFailed = Code(rawValue: 30)
        public static let fencedInstanceID = Code(rawValue: 82)
        // librdkafka local errors (rdkafka.h `RD_KAFKA_RESP_ERR__*`).
        public static let badMessage = Code(rawValue: -199)
        public static let fail = Code(rawValue: -196)
        public static let transport = Code(rawValue: -195)
        public static let msgTimedOut = Code(rawValue: -192)
        public static let partitionEOF = Code(rawValue: -191)
        public static let unknownPartition = Code(rawValue: -190)
        public static let unknownTopic = Code(rawValue: -188)
        public static let allBrokersDown = Code(rawValue: -187)
        public static let invalidArgument = Code(rawValue: -186)
        public static let timedOut = Code(rawValue: -185)
        public static let queueFull = Code(rawValue: -184)
        public static let waitCoordinator = Code(rawValue: -180)
        public static let unknownGroup = Code(rawValue: -179)
        public static let noOffset = Code(rawValue: -168)
        public static let state = Code(rawValue: -172)
        public static let fatal = Code(rawValue: -150)
        public static let assignmentLost = Code(rawValue: -142)
        public static let destroy = Code(rawValue: -197)
    }

    /// librdkafka's error code (for a fatal error: the underlying code from `rd_kafka_fatal_error`).
    public var code: Code
    /// librdkafka's own text for the error.
    public var message: String
    /// What the client was doing, e.g. `"commit"`, `"configure security.protocol"`.
    public var operation: String
    /// The topic concerned, when known.
    public var topic: String?
    /// The partition concerned, when known.
    public var partition: Int32?
    /// The client instance is unusable (`rd_kafka_fatal_error`): close it and create a new one.
    public var isFatal: Bool
    /// Retrying the same operation later may succeed (a transient broker or network condition).
    public var isRetriable: Bool

    public init(code: Code, message: String, operation: String, topic: String? = nil, partition: Int32? = nil,
                isFatal: Bool = false, isRetriable: Bool? = nil) {
        self.code = code
        self.message = message
        self.operation = operation
        self.topic = topic
        self.partition = partition
        self.isFatal = isFatal
        self.isRetriable = isRetriable ?? (!isFatal && Self.retriableCodes.contains(code))
    }

    /// The consumer's group generation moved on (a rebalance happened or the member was evicted),
    /// so the operation, typically a commit, was rejected for the old generation. The engine must
    /// stop committing for the partitions concerned: they may now belong to another member.
    ///
    /// True for ILLEGAL_GENERATION (22), UNKNOWN_MEMBER_ID (25), REBALANCE_IN_PROGRESS (27),
    /// FENCED_INSTANCE_ID (82), and librdkafka's local `_ASSIGNMENT_LOST` and `_STATE` (a commit
    /// attempted while the consumer is not in a state to commit, e.g. after its assignment was lost).
    public var isGenerationMismatch: Bool { Self.generationCodes.contains(code) }

    static let generationCodes: Set<Code> = [
        .illegalGeneration, .unknownMemberID, .rebalanceInProgress, .fencedInstanceID, .assignmentLost, .state,
    ]
    static let retriableCodes: Set<Code> = [
        .leaderNotAvailable, .notLeaderForPartition, .requestTimedOut, .networkException,
        .coordinatorLoadInProgress, .coordinatorNotAvailable, .notCoordinator,
        .transport, .allBrokersDown, .timedOut, .waitCoordinator, .msgTimedOut, .queueFull,
    ]

    public var description: String {
        var s = "kafka: \(operation)"
        if let topic { s += " [\(topic)" + (partition.map { "/\($0)" } ?? "") + "]" }
        s += ": \(message) (\(code.name)"
        if isFatal { s += ", fatal" }
        return s + ")"
    }
}

extension KafkaError {
    /// Builds an error from a librdkafka response code, with librdkafka's text for it.
    init(_ err: rd_kafka_resp_err_t, operation: String, topic: String? = nil, partition: Int32? = nil) {
        self.init(code: Code(rawValue: err.rawValue), message: String(cString: rd_kafka_err2str(err)),
                  operation: operation, topic: topic, partition: partition)
    }

    /// Takes ownership of an `rd_kafka_error_t` (destroying it) and converts it.
    init(consuming error: OpaquePointer, operation: String) {
        defer { rd_kafka_error_destroy(error) }
        self.init(code: Code(rawValue: rd_kafka_error_code(error).rawValue),
                  message: String(cString: rd_kafka_error_string(error)), operation: operation,
                  isFatal: rd_kafka_error_is_fatal(error) != 0,
                  isRetriable: rd_kafka_error_is_retriable(error) != 0)
    }

    /// The fatal error of a client instance (`rd_kafka_fatal_error`), or nil when none was raised.
    static func fatal(_ rk: OpaquePointer, operation: String) -> KafkaError? {
        var buf = [CChar](repeating: 0, count: 512)
        let err = rd_kafka_fatal_error(rk, &buf, buf.count)
        guard err != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        return KafkaError(code: Code(rawValue: err.rawValue), message: stringFromErrorBuffer(buf),
                          operation: operation, isFatal: true)
    }

    /// Throws unless `err` is `RD_KAFKA_RESP_ERR_NO_ERROR` (the single check point for C status codes).
    static func check(_ err: rd_kafka_resp_err_t, _ operation: @autoclosure () -> String,
                      topic: String? = nil, partition: Int32? = nil) throws(KafkaError) {
        guard err != RD_KAFKA_RESP_ERR_NO_ERROR else { return }
        throw KafkaError(err, operation: operation(), topic: topic, partition: partition)
    }
}
