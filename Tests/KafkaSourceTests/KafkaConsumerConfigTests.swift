import KafkaSource
import Testing

@Suite("Consumer configuration")
struct KafkaConsumerConfigTests {
    func config(_ properties: [String: String]) -> KafkaConsumerConfig {
        KafkaConsumerConfig(bootstrapServers: "127.0.0.1:1", groupID: "g", topics: ["t"], properties: properties)
    }

    @Test("setting a forced property is a configuration error naming the key", arguments: [
        "enable.auto.commit", "enable.auto.offset.store", "isolation.level", "enable.partition.eof",
    ])
    func forcedKeyRejected(key: String) throws {
        let error = try #require(throws: KafkaError.self) {
            try KafkaConsumer(config: config([key: "true"]), rebalanceHandler: nil, logger: testLogger("cfg"))
        }
        #expect(error.code == .invalidArgument)
        #expect(error.operation.contains(key))
        #expect(error.message.contains(key))
        #expect(KafkaConsumerConfig.forcedProperties[key] != nil)
    }

    @Test("an unknown or invalid pass-through property fails at creation with librdkafka's own text")
    func librdkafkaValidates() throws {
        let unknown = try #require(throws: KafkaError.self) {
            try KafkaConsumer(config: config(["no.such.property": "1"]), rebalanceHandler: nil, logger: testLogger("cfg"))
        }
        #expect(unknown.operation == "configure no.such.property")
        #expect(unknown.message.contains("no.such.property"))
        let invalid = try #require(throws: KafkaError.self) {
            try KafkaConsumer(config: config(["security.protocol": "carrier-pigeon"]), rebalanceHandler: nil,
                              logger: testLogger("cfg"))
        }
        #expect(invalid.operation == "configure security.protocol")
        #expect(invalid.message.contains("carrier-pigeon"))
    }

    @Test("valid pass-through properties (client.id, security.protocol) are accepted and the consumer closes")
    func passThroughAccepted() throws {
        let consumer = try KafkaConsumer(config: config(["client.id": "tidemark-test", "security.protocol": "plaintext"]),
                                         rebalanceHandler: nil, logger: testLogger("cfg"))
        try consumer.close(timeout: .seconds(5))
        #expect(throws: KafkaError.self) { try consumer.assignment() }
    }

    @Test("generation-mismatch classification covers the codes that mean the group moved on")
    func generationMismatch() {
        for code: KafkaError.Code in [.illegalGeneration, .unknownMemberID, .rebalanceInProgress, .fencedInstanceID] {
            #expect(KafkaError(code: code, message: "", operation: "commit").isGenerationMismatch)
        }
        for code: KafkaError.Code in [.requestTimedOut, .transport, .coordinatorNotAvailable, .offsetOutOfRange] {
            #expect(!KafkaError(code: code, message: "", operation: "commit").isGenerationMismatch)
        }
        #expect(KafkaError.Code.illegalGeneration.name == "ILLEGAL_GENERATION")
        #expect(KafkaError(code: .requestTimedOut, message: "", operation: "commit").isRetriable)
    }
}
