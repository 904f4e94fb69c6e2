import Foundation
import Pipeline
import Testing

/// The engine's side of the configuration. Loading, overrides and references are tested in
/// TidemarkConfigTests.
@Suite("engine configuration")
struct EngineConfigTests {
    @Test("librdkafka defaults fill only what [kafka.properties] leaves unset; the user's values win")
    func librdkafkaDefaults() {
        var empty: [String: String] = [:]
        Engine.applyLibrdkafkaDefaults(to: &empty)
        #expect(empty == ["queued.max.messages.kbytes": "32768", "queued.min.messages": "250000",
                          "fetch.max.bytes": "2097152", "fetch.wait.max.ms": "100"])
        var user = ["queued.min.messages": "50000", "fetch.wait.max.ms": "500", "client.id": "mine"]
        Engine.applyLibrdkafkaDefaults(to: &user)
        #expect(user == ["queued.min.messages": "50000", "fetch.wait.max.ms": "500", "client.id": "mine",
                         "queued.max.messages.kbytes": "32768", "fetch.max.bytes": "2097152"])
    }
}
