import CRdKafka
import Logging

/// The part of a client's callback state that librdkafka's `log_cb` reads, from any of its
/// threads. Immutable after init (`Logger` is `Sendable`), so concurrent reads are race-free.
/// Subclasses add state that only the owning thread touches.
class ClientCallbackContext {
    let logger: Logger

    init(logger: Logger) { self.logger = logger }

    /// Maps a syslog level (librdkafka's `log_cb` level) to a swift-log level.
    static func logLevel(_ syslog: Int32) -> Logger.Level {
        switch syslog {
        case ...2: return .critical
        case 3: return .error
        case 4: return .warning
        case 5: return .notice
        case 6: return .info
        default: return .debug
        }
    }
}

/// `log_cb`: runs on any librdkafka thread; only reads the immutable logger (see above).
func installLogCallback(_ conf: OpaquePointer) {
    rd_kafka_conf_set_log_cb(conf) { rk, level, facility, text in
        guard let rk, let opaque = rd_kafka_opaque(rk) else { return }
        let context = Unmanaged<ClientCallbackContext>.fromOpaque(opaque).takeUnretainedValue()
        let fac = facility.map { String(cString: $0) } ?? "?"
        context.logger.log(level: ClientCallbackContext.logLevel(level),
                           "\(text.map { String(cString: $0) } ?? "")",
                           metadata: ["kafka.facility": "\(fac)", "kafka.client": "\(String(cString: rd_kafka_name(rk)))"])
    }
}

