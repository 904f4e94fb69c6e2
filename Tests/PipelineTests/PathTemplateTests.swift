import Foundation
import KafkaSource
import Pipeline
import Testing
import TidemarkConfig

@Suite("path templates ([sink] path)")
struct PathTemplateTests {
    /// 2026-11-26T23:59:59.999999Z
    static let lastMicroOfDay: Int64 = 1_795_737_599_999_999

    static func utcCalendar(_ zone: String = "UTC") -> Calendar {
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(identifier: zone)!
        return cal
    }

    @Test("renders event and Kafka time, topic and partition; the file name is the default layout's")
    func render() throws {
        let layout = KeyLayout(prefix: "lake", template: try PathTemplate("{topic}/dt={event_date}/hour={event_hour}/k={kafka_date}/kafka_partition={partition}"))
        let times = PathTemplate.Times(eventMicros: Self.lastMicroOfDay, kafkaMillis: Self.lastMicroOfDay / 1000 + 1)
        #expect(layout.objectKey(topic: "app.logs", partition: 7, start: 42, times: times)
            == "lake/app.logs/dt=2026-11-26/hour=23/k=2026-11-27/kafka_partition=7/app.logs+7+00000000000000000042.parquet")
        #expect(layout.rejectedKey(topic: "app.logs", partition: 7, start: 42, end: 50, times: times)
            == "lake/_rejected/app.logs/dt=2026-11-26/hour=23/k=2026-11-27/kafka_partition=7/app.logs+7+00000000000000000042+00000000000000000050.jsonl")
        let parsed = layout.parseObjectKey(layout.objectKey(topic: "app.logs", partition: 7, start: 42, times: times))
        #expect(parsed?.topic == "app.logs" && parsed?.partition == 7 && parsed?.start == 42)
        // No event time (a rejected record): the event variables read the Kafka timestamp.
        let noEvent = PathTemplate.Times(eventMicros: nil, kafkaMillis: 86_400_000 * 3 + 3_600_000 * 5)
        #expect(layout.directory(topic: "t", partition: 0, times: noEvent) == "t/dt=1970-01-04/hour=05/k=1970-01-04/kafka_partition=0")
        // The default layout is unchanged.
        #expect(KeyLayout(prefix: "lake").objectKey(topic: "t", partition: 1, start: 2, times: times)
            == KeyLayout(prefix: "lake").objectKey(topic: "t", partition: 1, start: 2, startTimestampMillis: times.kafkaMillis))
    }

    @Test("dates and hours agree with Foundation's calendar in UTC, a fixed offset and an IANA zone (DST)")
    func zones() throws {
        for zone in ["UTC", "+05:30", "-08:00", "Europe/Berlin", "America/New_York"] {
            let tz = try PathTimeZone(parsing: zone)
            let t = try PathTemplate("y={event_year}/m={event_month}/d={event_day}/h={event_hour}/dt={event_date}", zone: tz)
            let foundationZone = zone.hasPrefix("+") || zone.hasPrefix("-")
                ? TimeZone(secondsFromGMT: (zone.hasPrefix("-") ? -1 : 1) * (Int(zone.dropFirst().prefix(2))! * 3600 + Int(zone.suffix(2))! * 60))!
                : TimeZone(identifier: zone)!
            var cal = Calendar(identifier: .gregorian)
            cal.timeZone = foundationZone
            var rng = SystemRandomNumberGenerator()
            for _ in 0..<2000 {
                // 1990...2060, including times before the epoch's day boundaries and DST changes.
                let seconds = Int64.random(in: 631_152_000...2_871_763_200, using: &rng)
                let c = cal.dateComponents([.year, .month, .day, .hour], from: Date(timeIntervalSince1970: Double(seconds)))
                let want = String(format: "y=%04d/m=%02d/d=%02d/h=%02d/dt=%04d-%02d-%02d", c.year!, c.month!, c.day!, c.hour!,
                                  c.year!, c.month!, c.day!)
                #expect(t.render(topic: "t", partition: 0, times: .init(eventMicros: seconds * 1_000_000, kafkaMillis: nil)) == want,
                        "\(zone) at \(seconds)")
            }
        }
    }

    @Test("equal buckets render equal paths")
    func buckets() throws {
        for source in ["dt={event_date}/hour={event_hour}", "dt={event_date}", "y={event_year}/m={event_month}", "y={kafka_year}",
                       "{topic}/dt={kafka_date}/e={event_hour}"] {
            let t = try PathTemplate(source, zone: try PathTimeZone(parsing: "Asia/Kolkata"))
            var rng = SystemRandomNumberGenerator()
            var previous: (PathTemplate.Bucket, String)?
            for _ in 0..<3000 {
                let times = PathTemplate.Times(eventMicros: Int64.random(in: 0...4_000_000_000_000_000, using: &rng) / 1000 * 1000,
                                               kafkaMillis: Int64.random(in: 0...4_000_000_000_000, using: &rng))
                let b = t.bucket(times)
                let path = t.render(topic: "t", partition: 3, times: times)
                // A batch holds one bucket, so one bucket must render one path. The converse does
                // not hold for a template that renders an hour without its date (e={event_hour}:
                // 00 of two days is one path, two buckets); that costs an extra cut, not a misplaced
                // row. (CI drew such a pair: "t/dt=2011-08-23/e=00" for two buckets.)
                if let (pb, pp) = previous, pb == b { #expect(pp == path, "\(source): \(pp) vs \(path)") }
                previous = (b, path)
                // A time in the same hour shares the bucket with its neighbour a few seconds on.
                var near = times
                near.eventMicros = times.eventMicros.map { $0 - $0 % 3_600_000_000 + 1_000_000 }
                near.kafkaMillis = times.kafkaMillis.map { $0 - $0 % 3_600_000 + 1000 }
                var nearer = near
                nearer.eventMicros = near.eventMicros.map { $0 + 5_000_000 }
                nearer.kafkaMillis = near.kafkaMillis.map { $0 + 5000 }
                #expect(t.bucket(near) == t.bucket(nearer))
            }
        }
        #expect(!(try PathTemplate("{topic}/x")).usesTime)
        #expect(try PathTemplate("dt={kafka_date}").usesTime && !(try PathTemplate("dt={kafka_date}")).usesEventTime)
        #expect(try PathTemplate("dt={event_date}").usesEventTime)
    }

    @Test("refused at start, naming the key and the reason", arguments: [
        ("dt={ingest_date}", "ingest time"),
        ("partition={partition}", "reserved word"),
        ("Date={event_date}", "reserved word"),
        ("{topic}/{nope}", "unknown variable"),
        ("/{topic}", "must not start or end"),
        ("{topic}//x", "empty path segment"),
        ("{topic}/../x", "'..'"),
        ("_hidden/{topic}", "hidden"),
        ("{topic", "without its '}'"),
        ("a b/{topic}", "character ' '"),
        ("", "is empty"),
    ])
    func refused(_ source: String, _ words: String) {
        do {
            _ = try PathTemplate(source)
            Issue.record("accepted \(source)")
        } catch let e as ConfigError {
            #expect(e.key == "sink.path")
            #expect(e.description.contains(words), "\(e)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test("listing prefixes cover every object of a topic, and belongs() judges by file name")
    func listing() throws {
        let a = KeyLayout(prefix: "lake", template: try PathTemplate("topic={topic}/dt={event_date}"))
        #expect(a.topicPrefix("logs") == "lake/topic=logs/")
        let b = KeyLayout(prefix: "lake", template: try PathTemplate("dt={event_date}/{topic}"))
        #expect(b.topicPrefix("logs") == "lake/")
        let c = KeyLayout(prefix: "", template: try PathTemplate("fixed/{topic}"))
        #expect(c.topicPrefix("logs") == "fixed/logs/")
        let times = PathTemplate.Times(eventMicros: 1, kafkaMillis: 1)
        for layout in [a, b, c] {
            let key = layout.objectKey(topic: "logs", partition: 2, start: 9, times: times)
            #expect(key.hasPrefix(layout.topicPrefix("logs")))
            #expect(layout.belongs(key, to: TopicPartition(topic: "logs", partition: 2)))
            #expect(!layout.belongs(key, to: TopicPartition(topic: "logs", partition: 1)))
            let dl = layout.rejectedKey(topic: "logs", partition: 2, start: 9, end: 10, times: times)
            #expect(dl.hasPrefix(layout.rejectedPrefix))
            #expect(layout.belongs(dl, to: TopicPartition(topic: "logs", partition: 2)))
        }
    }

    @Test("time zones: UTC, offsets and IANA names parse; others are refused naming sink.time_zone")
    func timeZoneParsing() throws {
        for ok in ["UTC", "+00:00", "+05:30", "-11:00", "Europe/Berlin"] { _ = try PathTimeZone(parsing: ok) }
        for bad in ["CET", "+5:30", "+25:00", "Mars/Olympus", ""] {
            #expect(throws: ConfigError.self, "\(bad)") { try PathTimeZone(parsing: bad) }
        }
    }
}
