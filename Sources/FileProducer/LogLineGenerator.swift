/// Generates synthetic application log lines, deterministically for a seed.
///
/// A good line is `<serial> <timestamp> <LEVEL> <message>`: the serial counts up from
/// `startSerial`; the timestamp is ISO-8601 UTC with milliseconds (`2026-11-26T17:00:00.123Z`);
/// the level is INFO (70%), DEBUG (15%), WARN (10%) or ERROR (5%); the message is 60-120 bytes
/// of words from a small vocabulary, some with `=value` suffixes. The engine's text parser
/// (`Pipeline.LogRecordParser`) accepts every good line (tested in `FileProducerTests`).
///
/// With `badFraction > 0` a line is replaced, with that probability, by a malformed one
/// (``BadKind``) for exercising the engine's dead-letter path. A bad line uses up its serial.
/// No line contains a newline byte.
public struct LogLineGenerator: Sendable {
    /// The kinds of malformed line mixed in by `badFraction`.
    public enum BadKind: CaseIterable, Sendable {
        /// The first 1-12 bytes of a good line.
        case truncated
        /// A good line whose timestamp has `X` instead of `T`.
        case badTimestamp
        /// 1-64 random bytes (never a newline).
        case binaryGarbage
        /// An empty line.
        case empty
        /// A good line with an invalid UTF-8 sequence (`C3 28`) in the message.
        case invalidUTF8
    }

    private var rng: SplitMix64
    private var serial: Int64
    private let badFraction: Double
    private let startMillis: Int64
    private let stepMillis: Int64
    /// Lines made so far that were malformed.
    public private(set) var badCount = 0

    static let levels: [String] = Array(repeating: "INFO", count: 70) + Array(repeating: "DEBUG", count: 15)
        + Array(repeating: "WARN", count: 10) + Array(repeating: "ERROR", count: 5)
    static let words: [String] = """
        user session request cache disk login payment order queue worker timeout retry connection \
        handshake shard replica leader commit index query latency upstream tenant token
        """.split(separator: " ").map(String.init)

    /// - Parameters:
    ///   - seed: the generator seed; equal seeds and options give equal lines.
    ///   - startSerial: the serial of the first line.
    ///   - badFraction: probability in [0, 1] that a line is malformed.
    ///   - startMillis: timestamp of serial 0, milliseconds since the Unix epoch (default
    ///     2026-11-26T00:00:00Z); serial `n` is stamped `startMillis + n * stepMillis`, so the
    ///     timestamps continue across runs that continue the serials.
    ///   - stepMillis: milliseconds between consecutive serials (default 7).
    public init(seed: UInt64, startSerial: Int64 = 0, badFraction: Double = 0,
                startMillis: Int64 = 1_795_651_200_000, stepMillis: Int64 = 7) {
        // Mix the start serial into the seed so a run continuing the serials does not repeat the
        // previous run's messages.
        rng = SplitMix64(seed: seed ^ (UInt64(bitPattern: startSerial) &* 0xD6E8_FEB8_6659_FD93))
        serial = startSerial
        self.badFraction = min(max(badFraction, 0), 1)
        self.startMillis = startMillis
        self.stepMillis = stepMillis
    }

    /// The serial the next line will carry.
    public var nextSerial: Int64 { serial }

    /// The next line, without its newline.
    /// - Parameter nowMillis: stamp the line with this time instead of the synthetic clock.
    public mutating func nextLine(nowMillis: Int64? = nil) -> [UInt8] {
        let s = serial
        serial += 1
        let good = goodLine(serial: s, millis: nowMillis ?? (startMillis + s * stepMillis))
        guard badFraction > 0, rng.unit() < badFraction else { return good }
        badCount += 1
        return badLine(from: good)
    }

    private mutating func goodLine(serial: Int64, millis: Int64) -> [UInt8] {
        var out = Array("\(serial) ".utf8)
        out += Self.formatTimestamp(millis: millis)
        out.append(0x20)
        out += Array(Self.levels[rng.int(in: 0...(Self.levels.count - 1))].utf8)
        out.append(0x20)
        let target = rng.int(in: 60...120)
        var message: [UInt8] = []
        message.reserveCapacity(target + 24)
        while message.count < target {
            if !message.isEmpty { message.append(0x20) }
            message += Array(Self.words[rng.int(in: 0...(Self.words.count - 1))].utf8)
            if rng.unit() >= 0.7 { message += Array("=\(rng.int(in: 0...99_999))".utf8) }
        }
        out += message.prefix(target)
        return out
    }

    private mutating func badLine(from good: [UInt8]) -> [UInt8] {
        switch BadKind.allCases[rng.int(in: 0...(BadKind.allCases.count - 1))] {
        case .truncated:
            return Array(good.prefix(rng.int(in: 1...12)))
        case .badTimestamp:
            var line = good
            if let t = line.firstIndex(of: UInt8(ascii: "T")) { line[t] = UInt8(ascii: "X") }
            return line
        case .binaryGarbage:
            return (0..<rng.int(in: 1...64)).map { _ in
                let b = UInt8(truncatingIfNeeded: rng.next())
                return b == 0x0A ? 0x0B : b
            }
        case .empty:
            return []
        case .invalidUTF8:
            var line = good
            let at = min(40, line.count - 2)
            line[at] = 0xC3
            line[at + 1] = 0x28
            return line
        }
    }

    /// Formats milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC, proleptic
    /// Gregorian; Howard Hinnant's `civil_from_days`).
    public static func formatTimestamp(millis: Int64) -> [UInt8] {
        let ms = Int(((millis % 1000) + 1000) % 1000)
        let totalSeconds = (millis - Int64(ms)) / 1000
        var days = totalSeconds / 86_400
        var secondOfDay = totalSeconds % 86_400
        if secondOfDay < 0 {
            secondOfDay += 86_400
            days -= 1
        }
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        var out: [UInt8] = []
        out.reserveCapacity(24)
        func put(_ v: Int64, _ width: Int) {
            var digits = [UInt8](repeating: 0x30, count: width)
            var x = v
            for i in stride(from: width - 1, through: 0, by: -1) {
                digits[i] = 0x30 + UInt8(x % 10)
                x /= 10
            }
            out += digits
        }
        put(year, 4); out.append(UInt8(ascii: "-"))
        put(month, 2); out.append(UInt8(ascii: "-"))
        put(day, 2); out.append(UInt8(ascii: "T"))
        put(secondOfDay / 3600, 2); out.append(UInt8(ascii: ":"))
        put(secondOfDay / 60 % 60, 2); out.append(UInt8(ascii: ":"))
        put(secondOfDay % 60, 2); out.append(UInt8(ascii: "."))
        put(Int64(ms), 3); out.append(UInt8(ascii: "Z"))
        return out
    }
}
