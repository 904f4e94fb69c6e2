import CRdKafka

/// An error from librdkafka's mock cluster API.
public struct MockClusterError: Error, CustomStringConvertible, Sendable {
    /// What the mock cluster was asked to do.
    public var operation: String
    /// librdkafka's own text for the failure (`rd_kafka_err2str` or the configuration error).
    public var message: String

    public var description: String { "mock cluster: \(operation): \(message)" }
}

/// A Kafka cluster simulated in-process by librdkafka (`rdkafka_mock.h`).
///
/// The brokers listen on ephemeral ports on 127.0.0.1 and speak the real Kafka protocol, so any
/// Kafka client (including a different librdkafka version) can use ``bootstrapServers``. The
/// mock is for tests and for `etl-devbroker` only; production code never depends on it.
///
/// Thread safety: the mock cluster runs its own broker thread; the calls below only post
/// operations to it and are safe from any thread. The handle is owned by this object and
/// destroyed exactly once, in ``close()`` or `deinit`.
public final class MockCluster: @unchecked Sendable {
    // @unchecked Sendable: the two pointers are written only in init and close(); librdkafka's
    // mock API is internally synchronised (each call enqueues an op on the cluster's thread).
    private var handle: OpaquePointer?
    private var cluster: OpaquePointer?

    /// The Kafka request API keys that fault injection refers to (Kafka protocol numbers).
    public enum APIKey: Int16, Sendable, CaseIterable {
        case produce = 0
        case fetch = 1
        case listOffsets = 2
        case metadata = 3
        case offsetCommit = 8
        case offsetFetch = 9
        case findCoordinator = 10
        case joinGroup = 11
        case heartbeat = 12
        case leaveGroup = 13
        case syncGroup = 14
        case initProducerId = 22
    }

    /// Starts a mock cluster.
    ///
    /// - Parameter brokers: number of brokers (1 is enough for a dev broker).
    /// - Throws: ``MockClusterError`` when librdkafka cannot create the hosting handle or cluster.
    /// The corresponding C function is `rd_kafka_mock_cluster_new`.
    public init(brokers: Int = 1) throws {
        let conf = rd_kafka_conf_new()
        var errstr = [CChar](repeating: 0, count: 512)
        // The hosting handle never connects anywhere; silence its own logging.
        _ = rd_kafka_conf_set(conf, "log_level", "3", &errstr, errstr.count)
        guard let rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &errstr, errstr.count) else {
            throw MockClusterError(operation: "rd_kafka_new", message: String(nulTerminated: errstr))
        }
        guard let mc = rd_kafka_mock_cluster_new(rk, Int32(brokers)) else {
            rd_kafka_destroy(rk)
            throw MockClusterError(operation: "rd_kafka_mock_cluster_new", message: "failed")
        }
        handle = rk
        cluster = mc
    }

    deinit { close() }

    /// Stops the brokers and frees the cluster. Idempotent.
    public func close() {
        if let mc = cluster { rd_kafka_mock_cluster_destroy(mc) }
        if let rk = handle { rd_kafka_destroy(rk) }
        cluster = nil
        handle = nil
    }

    /// The `host:port,...` list clients use as `bootstrap.servers` (always 127.0.0.1).
    public var bootstrapServers: String {
        guard let mc = cluster, let s = rd_kafka_mock_cluster_bootstraps(mc) else { return "" }
        return String(cString: s)
    }

    /// Creates a topic. The mock does not implement the CreateTopics API (librdkafka 2.0.2),
    /// so topics are created here; a client's metadata request also auto-creates unknown topics
    /// with the mock's default partition count.
    /// The corresponding C function is `rd_kafka_mock_topic_create`.
    public func createTopic(_ name: String, partitions: Int, replicationFactor: Int = 1) throws {
        try check("create topic \(name)", rd_kafka_mock_topic_create(
            try live(), name, Int32(partitions), Int32(replicationFactor)))
    }

    /// Takes a broker down (closes its listener and connections) until ``setBrokerUp(_:)``.
    /// The corresponding C function is `rd_kafka_mock_broker_set_down`.
    public func setBrokerDown(_ brokerID: Int32) throws {
        try check("broker \(brokerID) down", rd_kafka_mock_broker_set_down(try live(), brokerID))
    }

    /// Brings a broker back up. The corresponding C function is `rd_kafka_mock_broker_set_up`.
    public func setBrokerUp(_ brokerID: Int32) throws {
        try check("broker \(brokerID) up", rd_kafka_mock_broker_set_up(try live(), brokerID))
    }

    /// Makes the next `errors.count` requests of `api` fail with the given Kafka error codes
    /// (e.g. 27 REBALANCE_IN_PROGRESS, 22 ILLEGAL_GENERATION, 7 REQUEST_TIMED_OUT).
    /// The corresponding C function is `rd_kafka_mock_push_request_errors_array`.
    public func pushRequestErrors(_ api: APIKey, errors: [Int32]) throws {
        let mc = try live()
        let codes = errors.map { rd_kafka_resp_err_t(rawValue: $0) }
        codes.withUnsafeBufferPointer { buf in
            rd_kafka_mock_push_request_errors_array(mc, api.rawValue, buf.count, buf.baseAddress)
        }
    }

    /// Forgets errors pushed for `api`. The corresponding C function is
    /// `rd_kafka_mock_clear_request_errors`.
    public func clearRequestErrors(_ api: APIKey) throws {
        rd_kafka_mock_clear_request_errors(try live(), api.rawValue)
    }

    /// Adds round-trip latency to every response of a broker.
    /// The corresponding C function is `rd_kafka_mock_broker_set_rtt`.
    public func setBrokerRTT(_ brokerID: Int32, milliseconds: Int) throws {
        try check("broker \(brokerID) rtt", rd_kafka_mock_broker_set_rtt(try live(), brokerID, Int32(milliseconds)))
    }

    private func live() throws -> OpaquePointer {
        guard let mc = cluster else { throw MockClusterError(operation: "use", message: "cluster is closed") }
        return mc
    }

    private func check(_ op: String, _ err: rd_kafka_resp_err_t) throws {
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw MockClusterError(operation: op, message: String(cString: rd_kafka_err2str(err)))
        }
    }
}

extension String {
    /// Decodes a NUL-terminated C buffer (librdkafka's `errstr`) as UTF-8.
    init(nulTerminated buffer: [CChar]) {
        self.init(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
