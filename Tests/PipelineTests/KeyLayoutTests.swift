import Foundation
import Pipeline
import Testing

@Suite("key layout")
struct KeyLayoutTests {
    @Test("keys are Hive-partitioned by topic, UTC date of the start record and partition, with 20-digit offsets")
    func layout() {
        let k = KeyLayout(prefix: "/lake/logs/")
        // 2026-11-26T23:59:59.999Z in ms
        let ms: Int64 = 1_795_737_599_999
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(identifier: "UTC")!
        let c = cal.dateComponents([.year, .month, .day], from: Date(timeIntervalSince1970: Double(ms) / 1000))
        let dt = String(format: "%04d-%02d-%02d", c.year!, c.month!, c.day!)
        #expect(k.objectKey(topic: "app.logs", partition: 3, start: 1234, startTimestampMillis: ms)
            == "lake/logs/topic=app.logs/dt=\(dt)/partition=3/app.logs+3+00000000000000001234.parquet")
        #expect(k.rejectedKey(topic: "t", partition: 0, start: 5, end: 9, startTimestampMillis: 0)
            == "lake/logs/_rejected/topic=t/dt=1970-01-01/partition=0/t+0+00000000000000000005+00000000000000000009.jsonl")
        #expect(KeyLayout(prefix: "").objectKey(topic: "t", partition: 0, start: 0, startTimestampMillis: nil)
            == "topic=t/dt=1970-01-01/partition=0/t+0+00000000000000000000.parquet")
    }

    @Test("dates agree with Foundation's calendar across 400 years of sampled days")
    func dates() {
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(identifier: "UTC")!
        var day: Int64 = 0
        while day < 146_097 {
            let ms = day * 86_400_000 + 43_200_000
            let c = cal.dateComponents([.year, .month, .day], from: Date(timeIntervalSince1970: Double(ms) / 1000))
            #expect(KeyLayout.date(kafkaTimestampMillis: ms) == String(format: "%04d-%02d-%02d", c.year!, c.month!, c.day!))
            day += 97
        }
    }

    @Test("parseObjectKey inverts objectKey; topic validation follows Kafka's rule so keys cannot escape the prefix")
    func parseAndValidate() {
        let k = KeyLayout(prefix: "p")
        let key = k.objectKey(topic: "a_b-c.d", partition: 12, start: 987_654_321, startTimestampMillis: 1)
        let parsed = k.parseObjectKey(key)
        #expect(parsed?.topic == "a_b-c.d")
        #expect(parsed?.partition == 12)
        #expect(parsed?.start == 987_654_321)
        for bad in ["", ".", "..", "a/b", "../x", "a b", "é", String(repeating: "x", count: 250)] {
            #expect(!KeyLayout.isValidTopic(bad), "\(bad)")
        }
        #expect(KeyLayout.isValidTopic("logs"))
    }
}
