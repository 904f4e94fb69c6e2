import Foundation

/// A configuration problem, naming the key (`section.key`) when there is one.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    /// The key at fault, `section.key` (`kafka.properties.<name>` for a librdkafka property).
    public var key: String?
    /// What is wrong; never a value that came from a reference.
    public var message: String
    /// The `${...}` reference that could not be resolved, when that is the problem.
    public var reference: String?

    /// An error about `key` (nil: the file as a whole).
    public init(key: String?, message: String, reference: String? = nil) {
        self.key = key
        self.message = message
        self.reference = reference
    }

    public var description: String {
        guard let key else { return "config: \(message)" }
        // The override of `kafka.properties.<name>` is TIDEMARK_KAFKA_PROPERTIES: the variable
        // is named by the first two parts.
        let parts = key.split(separator: ".").map(String.init)
        let env = parts.count < 2 ? "" : " (env \(EngineConfig.Reader.envName(parts[0], parts[1])))"
        return "config: \(key)\(env): \(message)"
    }
}
