import CRdKafka

/// Builds an `rd_kafka_conf_t` from properties, turning librdkafka's validation failures into
/// ``KafkaError`` with librdkafka's own text. The returned conf is owned by the caller (it is
/// consumed by `rd_kafka_new`, or must be destroyed).
func makeRDKafkaConf(_ properties: [(String, String)]) throws(KafkaError) -> OpaquePointer {
    let conf = rd_kafka_conf_new()!
    var errstr = [CChar](repeating: 0, count: 512)
    for (key, value) in properties {
        // The corresponding C function is `rd_kafka_conf_set`; it rejects unknown keys and bad values.
        if rd_kafka_conf_set(conf, key, value, &errstr, errstr.count) != RD_KAFKA_CONF_OK {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(code: .invalidArgument, message: stringFromErrorBuffer(errstr), operation: "configure \(key)")
        }
    }
    return conf
}

/// Creates a client handle; on failure librdkafka has not taken the conf, so it is destroyed here.
func makeRDKafkaHandle(_ type: rd_kafka_type_t, _ conf: OpaquePointer) throws(KafkaError) -> OpaquePointer {
    var errstr = [CChar](repeating: 0, count: 512)
    guard let rk = rd_kafka_new(type, conf, &errstr, errstr.count) else {
        rd_kafka_conf_destroy(conf)
        throw KafkaError(code: .invalidArgument, message: stringFromErrorBuffer(errstr), operation: "create client")
    }
    return rk
}

/// The NUL-terminated text librdkafka wrote into an error buffer.
func stringFromErrorBuffer(_ buffer: [CChar]) -> String {
    buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}
