import Foundation
import Pipeline
import Testing
import TidemarkConfig

/// Microseconds since the epoch computed with Foundation's calendar, independent of the parser.
private func foundationMicros(_ y: Int, _ mo: Int, _ d: Int, _ h: Int, _ mi: Int, _ s: Int, micros: Int = 0) -> Int64 {
    var cal = Calendar(identifier: .gregorian)
    cal.timeZone = TimeZone(identifier: "UTC")!
    let date = cal.date(from: DateComponents(year: y, month: mo, day: d, hour: h, minute: mi, second: s))!
    return Int64((date.timeIntervalSince1970).rounded()) * 1_000_000 + Int64(micros)
}

@Suite("log record parser")
struct LogRecordParserTests {
    let parser = LogRecordParser(format: .auto)

    func text(_ r: ParsedLogRecord, in line: String) -> String {
        if let t = r.messageText { return t }
        let bytes = Array(line.utf8)
        return String(decoding: bytes[r.messageRange!], as: UTF8.self)
    }

    @Test("the generator's text format parses into serial, UTC event time, level and message")
    func textLine() throws {
        let line = "42 2026-11-26T14:45:46.123Z INFO user 17 logged in from 10.0.0.1 \u{00e9}\u{4e2d}\n"
        let r = try parser.parse(Array(line.utf8)).get()
        #expect(r.serial == 42)
        #expect(r.eventTimeMicros == foundationMicros(2026, 11, 26, 14, 45, 46, micros: 123_000))
        #expect(r.level == "INFO")
        #expect(text(r, in: line) == "user 17 logged in from 10.0.0.1 \u{00e9}\u{4e2d}")
        #expect(r.attributes == nil)
    }

    @Test("timestamps with offsets, 9-digit fractions, before 1970 and after 2100 convert exactly", arguments: [
        ("1969-07-20T20:17:40Z", foundationMicros(1969, 7, 20, 20, 17, 40)),
        ("2150-01-01T00:00:00.000001Z", foundationMicros(2150, 1, 1, 0, 0, 0, micros: 1)),
        ("2026-03-01T01:30:00+02:00", foundationMicros(2026, 2, 28, 23, 30, 0)),
        ("2024-02-29T12:00:00.123456789-0130", foundationMicros(2024, 2, 29, 13, 30, 0, micros: 123_456)),
        // The Windows FILETIME epoch, a published constant (proleptic Gregorian, as ISO 8601 and
        // Arrow use; Foundation's calendar switches to Julian before 1582, so it is not the oracle here).
        ("1601-01-01T00:00:00Z", Int64(-11_644_473_600) * 1_000_000),
    ])
    func timestamps(_ ts: String, _ expected: Int64) throws {
        let r = try parser.parse(Array("1 \(ts) WARN x".utf8)).get()
        #expect(r.eventTimeMicros == expected)
        #expect(r.level == "WARN")
    }

    @Test("every level spelling in any case maps to its canonical name; near misses are rejected")
    func levels() throws {
        for (spelling, canonical) in LogRecordParser.levels {
            for variant in [spelling, spelling.lowercased(), spelling.prefix(1) + spelling.dropFirst().lowercased()] {
                let r = try parser.parse(Array("7 2026-11-26T14:45:46Z \(variant) m".utf8)).get()
                #expect(r.level == canonical, "\(variant)")
            }
        }
        // A leading NUL packs to the same integer as the name: the length must tell them apart.
        for miss in ["\u{0}INFO", "\u{0}\u{0}WARN", "INF", "INFOO", "ERRORS", "WARNINGS", "CRITICA", "1NFO"] {
            if case .success(let r) = parser.parse(Array("7 2026-11-26T14:45:46Z \(miss) m".utf8)) {
                Issue.record("accepted level '\(miss)' as \(r.level)")
            }
        }
    }

    @Test("malformed lines are rejected with a reason that says what is wrong", arguments: [
        ("", "empty"),
        ("\n", "empty"),
        ("abc 2026-11-26T14:45:46Z INFO m", "serial"),
        ("99999999999999999999 2026-11-26T14:45:46Z INFO m", "Int64"),
        ("1 2026-13-26T14:45:46Z INFO m", "timestamp"),
        ("1 2026-04-31T14:45:46Z INFO m", "timestamp"),
        ("1 2026-11-26T14:45 INFO m", "timestamp"),
        ("1 2026-11-26 14:45:46Z INFO m", "timestamp"),
        ("1 2026-11-26T14:45:46Z", "level"),
        ("1 2026-11-26T14:45:46Z LOUD m", "unknown level"),
        ("1 2026-11-26T14:45:46.1234567890Z INFO m", "timestamp"),
        ("{\"serial\": 1}", "timestamp"),
        ("{\"serial\": true, \"ts\": \"2026-11-26T14:45:46Z\", \"level\": \"INFO\"}", "serial"),
        ("{\"serial\": 1.5, \"ts\": \"2026-11-26T14:45:46Z\", \"level\": \"INFO\"}", "serial"),
        ("{\"serial\": 1, \"ts\": \"2026-11-26T14:45:46Z\"}", "level"),
        ("{broken", "invalid JSON"),
        ("[1,2]", "serial"),
    ])
    func rejects(_ line: String, _ reasonContains: String) {
        switch parser.parse(Array(line.utf8)) {
        case .success(let r): Issue.record("accepted '\(line)' as \(r)")
        case .failure(let reason): #expect(reason.description.contains(reasonContains), "reason: \(reason)")
        }
    }

    @Test("invalid UTF-8 (bad continuation, overlong, surrogate, > U+10FFFF, truncated) is rejected")
    func invalidUTF8() {
        let prefix = Array("1 2026-11-26T14:45:46Z INFO ".utf8)
        for bad: [UInt8] in [[0xC3, 0x28], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82], [0xFF]] {
            guard case .failure(let reason) = parser.parse(prefix + bad) else {
                Issue.record("accepted \(bad)")
                continue
            }
            #expect(reason.description == "invalid UTF-8")
        }
        // 4-byte and 3-byte sequences at the very end are fine.
        #expect((try? parser.parse(prefix + [0xF0, 0x9F, 0x98, 0x80]).get()) != nil)
    }

    @Test("UTF-8 validation agrees with the standard library's validator on 5,000 mixed byte strings")
    func utf8AgreesWithStdlib() {
        // Deterministic (SplitMix64): ASCII runs of every length around the 8-byte fast path,
        // with lead, continuation and invalid bytes placed at every position.
        var state: UInt64 = 0x5EED
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        let prefix = Array("1 2026-11-26T14:45:46Z INFO ".utf8)
        let special: [UInt8] = [0x80, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF, 0xA0, 0x9F, 0x90, 0x8F]
        var rejected = 0
        for _ in 0..<5000 {
            var body: [UInt8] = [UInt8(ascii: "m")]
            for _ in 0..<Int(next() % 40) {
                let r = next() % 10
                body.append(r < 7 ? UInt8(0x20 + next() % 95) : special[Int(next() % UInt64(special.count))])
            }
            body.append(UInt8(ascii: "."))   // no trailing CR/LF for the parser to strip
            let line = prefix + body
            let valid = String(validating: line, as: UTF8.self) != nil
            switch parser.parse(line) {
            case .success(let r):
                #expect(valid, "accepted invalid UTF-8: \(body)")
                #expect(r.messageRange.map { Array(line[$0]) } == body)
            case .failure(let reason):
                rejected += 1
                #expect(!valid && reason.description == "invalid UTF-8", "rejected \(body): \(reason)")
            }
        }
        #expect(rejected > 1000 && rejected < 4900)   // both outcomes were exercised
    }

    @Test("JSON lines: ts/time aliases, level aliases, other fields kept as sorted JSON attributes")
    func jsonLine() throws {
        let line = #"{"serial": 7, "time": "2026-11-26T00:00:00Z", "level": "warning", "message": "disk \"full\"", "host": "a", "n": 3}"#
        let r = try parser.parse(Array(line.utf8)).get()
        #expect(r.serial == 7)
        #expect(r.level == "WARN")
        #expect(r.messageText == "disk \"full\"")
        #expect(r.eventTimeMicros == foundationMicros(2026, 11, 26, 0, 0, 0))
        let attrs = try #require(r.attributes)
        let decoded = try #require(JSONSerialization.jsonObject(with: Data(attrs.utf8)) as? [String: Any])
        #expect(decoded["host"] as? String == "a")
        #expect((decoded["n"] as? NSNumber)?.intValue == 3)
        #expect(decoded.count == 2)
    }

    @Test("lines over max_line_bytes are rejected, not parsed")
    func overlong() {
        let p = LogRecordParser(format: .text, maxLineBytes: 100)
        let line = "1 2026-11-26T14:45:46Z INFO " + String(repeating: "x", count: 200)
        guard case .failure(let reason) = p.parse(Array(line.utf8)) else { Issue.record("accepted"); return }
        #expect(reason.description.contains("exceeds"))
    }

    @Test("fuzz: 200,000 random and mutated inputs never crash and always yield a record or a reason")
    func fuzz() {
        var rng = SplitMix64(seed: 0x71DE_3A4C)
        let seeds = [
            "42 2026-11-26T14:45:46.123Z INFO user logged in",
            #"{"serial": 7, "ts": "2026-11-26T00:00:00+01:00", "level": "ERROR", "message": "m", "k": [1, {"a": null}]}"#,
            "-9223372036854775808 1970-01-01T00:00:00Z DEBUG",
        ].map { Array($0.utf8) }
        var accepted = 0
        for i in 0..<200_000 {
            var input: [UInt8]
            if i % 4 == 0 {
                input = (0..<Int(rng.next() % 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            } else {
                input = seeds[Int(rng.next() % UInt64(seeds.count))]
                for _ in 0..<(1 + Int(rng.next() % 4)) where !input.isEmpty {
                    let at = Int(rng.next() % UInt64(input.count))
                    switch rng.next() % 4 {
                    case 0: input[at] = UInt8(truncatingIfNeeded: rng.next())
                    case 1: input.remove(at: at)
                    case 2: input.insert(UInt8(truncatingIfNeeded: rng.next()), at: at)
                    default: input = Array(input[..<at])
                    }
                }
            }
            switch parser.parse(input) {
            case .success(let r):
                accepted += 1
                if let range = r.messageRange { #expect(range.upperBound <= input.count) }
            case .failure(let reason):
                #expect(!reason.description.isEmpty)
            }
        }
        #expect(accepted > 1000, "mutations of valid lines should often stay valid")
    }
}

/// A small deterministic PRNG for seeded fuzzing.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
