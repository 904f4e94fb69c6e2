import Foundation
import TidemarkConfig

/// A log record that parsed: typed values, with the level and message as byte ranges into the
/// input (no copy) for the text format.
public struct ParsedLogRecord: Sendable, Equatable {
    /// `serial` column.
    public var serial: Int64
    /// `event_time` column: microseconds since the Unix epoch, UTC.
    public var eventTimeMicros: Int64
    /// `level` column, upper-cased canonical spelling (e.g. "WARN").
    public var level: String
    /// Byte range of the message in the input line (text format), or nil when ``messageText`` holds it.
    public var messageRange: Range<Int>?
    /// The message when it does not lie in the input as-is (JSON format).
    public var messageText: String?
    /// `attributes` column: other JSON fields as a JSON object string (JSON format), else nil.
    public var attributes: String?
}

/// Why a record went to the dead-letter store. The text is stored with the record.
public struct RejectReason: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Parses log lines into typed columns. Total: every byte sequence yields a record or a
/// ``RejectReason``; nothing traps (fuzzed in `LogRecordParserTests`).
public struct LogRecordParser: Sendable {
    public var format: InputFormat
    /// Lines longer than this are rejected (their bytes still go to the dead-letter store).
    public var maxLineBytes: Int

    public init(format: InputFormat = .auto, maxLineBytes: Int = 1 << 20) {
        self.format = format
        self.maxLineBytes = maxLineBytes
    }

    /// Canonical level names; aliases map onto them.
    public static let levels: [String: String] = [
        "TRACE": "TRACE", "DEBUG": "DEBUG", "INFO": "INFO", "NOTICE": "NOTICE",
        "WARN": "WARN", "WARNING": "WARN", "ERROR": "ERROR", "ERR": "ERROR",
        "FATAL": "FATAL", "CRITICAL": "FATAL", "CRIT": "FATAL",
    ]

    /// `levels` keyed by the packed upper-case spelling (big-endian bytes in a UInt64), the most
    /// common first: the text format's hot path scans it instead of building a String per record.
    /// The length is part of the key: "\0INFO" packs to the same integer as "INFO".
    static let packedLevels: [(key: UInt64, count: Int, level: String)] = {
        let order = ["INFO", "DEBUG", "WARN", "ERROR", "TRACE", "WARNING", "NOTICE", "ERR", "FATAL", "CRITICAL", "CRIT"]
        precondition(Set(order) == Set(levels.keys), "packedLevels must list every level spelling")
        return order.map { name in (name.utf8.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }, name.utf8.count, levels[name]!) }
    }()

    @inline(__always)
    static func level(packed key: UInt64, count: Int) -> String? {
        for entry in packedLevels where entry.key == key && entry.count == count { return entry.level }
        return nil
    }

    /// Parses one record (a Kafka message value, without its trailing newline if any).
    public func parse(_ bytes: UnsafeRawBufferPointer) -> Result<ParsedLogRecord, RejectReason> {
        var end = bytes.count
        while end > 0 && (bytes[end - 1] == 0x0A || bytes[end - 1] == 0x0D) { end -= 1 }
        if end == 0 { return .failure(RejectReason("empty line")) }
        if end > maxLineBytes { return .failure(RejectReason("line of \(end) bytes exceeds max_line_bytes \(maxLineBytes)")) }
        let line = UnsafeRawBufferPointer(rebasing: bytes[0..<end])
        guard validateUTF8(line) else { return .failure(RejectReason("invalid UTF-8")) }
        switch format {
        case .text: return parseText(line)
        case .json: return parseJSON(line)
        case .auto, .seed, .regex, .raw:
            var i = 0
            while i < line.count && (line[i] == 0x20 || line[i] == 0x09) { i += 1 }
            return i < line.count && line[i] == UInt8(ascii: "{") ? parseJSON(line) : parseText(line)
        }
    }

    /// Convenience for tests and tools.
    public func parse(_ bytes: [UInt8]) -> Result<ParsedLogRecord, RejectReason> {
        bytes.withUnsafeBytes { parse($0) }
    }

    // MARK: Text

    func parseText(_ line: UnsafeRawBufferPointer) -> Result<ParsedLogRecord, RejectReason> {
        var i = 0
        let n = line.count
        // serial
        var negative = false
        if i < n && line[i] == UInt8(ascii: "-") { negative = true; i += 1 }
        let digitsStart = i
        var serial: Int64 = 0
        while i < n, line[i] >= 0x30, line[i] <= 0x39 {
            let d = Int64(line[i] - 0x30)
            let (m, o1) = serial.multipliedReportingOverflow(by: 10)
            let (s, o2) = negative ? m.subtractingReportingOverflow(d) : m.addingReportingOverflow(d)
            if o1 || o2 { return .failure(RejectReason("serial out of Int64 range")) }
            serial = s
            i += 1
        }
        if i == digitsStart { return .failure(RejectReason("missing serial number at byte 0")) }
        guard i < n, line[i] == 0x20 else { return .failure(RejectReason("expected a space after the serial at byte \(i)")) }
        while i < n && line[i] == 0x20 { i += 1 }
        // timestamp
        let tsStart = i
        while i < n && line[i] != 0x20 { i += 1 }
        guard let micros = Self.parseISO8601(UnsafeRawBufferPointer(rebasing: line[tsStart..<i])) else {
            return .failure(RejectReason("bad ISO-8601 timestamp at byte \(tsStart)"))
        }
        guard i < n else { return .failure(RejectReason("missing level after the timestamp")) }
        while i < n && line[i] == 0x20 { i += 1 }
        // level
        let levelStart = i
        while i < n && line[i] != 0x20 { i += 1 }
        guard i - levelStart > 0, i - levelStart <= 8 else { return .failure(RejectReason("missing or overlong level at byte \(levelStart)")) }
        // Up to 8 bytes, upper-cased and packed into one integer: no allocation per record.
        var key: UInt64 = 0
        for k in levelStart..<i {
            let c = line[k]
            key = key << 8 | UInt64((c >= 0x61 && c <= 0x7A) ? c - 0x20 : c)
        }
        guard let level = Self.level(packed: key, count: i - levelStart) else {
            return .failure(RejectReason("unknown level '\(String(decoding: line[levelStart..<i], as: UTF8.self))'"))
        }
        // message: everything after one space
        let messageStart = i < n ? i + 1 : n
        return .success(ParsedLogRecord(serial: serial, eventTimeMicros: micros, level: level,
                                        messageRange: messageStart..<n, messageText: nil, attributes: nil))
    }

    // MARK: JSON

    func parseJSON(_ line: UnsafeRawBufferPointer) -> Result<ParsedLogRecord, RejectReason> {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(line), options: [])
        } catch {
            return .failure(RejectReason("invalid JSON"))
        }
        guard var dict = object as? [String: Any] else { return .failure(RejectReason("JSON value is not an object")) }
        // serial
        let serial: Int64
        switch dict.removeValue(forKey: "serial") {
        case let n as NSNumber where String(cString: n.objCType) == "c":
            // JSON true/false arrive as a char-typed NSNumber (and `is Bool` matches 0 and 1 too).
            return .failure(RejectReason("serial is not an integer"))
        case let n as NSNumber:
            // JSON numbers arrive as NSNumber; accept integral spellings only.
            let text = n.stringValue
            guard !text.contains("."), !text.lowercased().contains("e"), let v = Int64(text) else {
                return .failure(RejectReason("serial is not an Int64 integer"))
            }
            serial = v
        case let s as String:
            guard let v = Int64(s) else { return .failure(RejectReason("serial is not an integer")) }
            serial = v
        case nil: return .failure(RejectReason("missing field 'serial'"))
        default: return .failure(RejectReason("serial is not an integer"))
        }
        // timestamp
        var tsValue: Any?
        for key in ["timestamp", "ts", "time"] where tsValue == nil {
            tsValue = dict.removeValue(forKey: key)
        }
        let micros: Int64
        switch tsValue {
        case let s as String:
            guard let m = Array(s.utf8).withUnsafeBytes({ Self.parseISO8601($0) }) else {
                return .failure(RejectReason("bad ISO-8601 timestamp"))
            }
            micros = m
        case nil: return .failure(RejectReason("missing field 'timestamp' (or 'ts'/'time')"))
        default: return .failure(RejectReason("timestamp is not a string"))
        }
        guard let levelRaw = dict.removeValue(forKey: "level") as? String else {
            return .failure(RejectReason("missing or non-string field 'level'"))
        }
        guard let level = Self.levels[levelRaw.uppercased()] else {
            return .failure(RejectReason("unknown level '\(levelRaw.prefix(32))'"))
        }
        let message: String
        switch dict.removeValue(forKey: "message") {
        case let s as String: message = s
        case nil: message = ""
        default: return .failure(RejectReason("message is not a string"))
        }
        var attributes: String?
        if !dict.isEmpty {
            guard let data = try? JSONSerialization.data(withJSONObject: dict, options: [.sortedKeys]) else {
                return .failure(RejectReason("attributes cannot be re-encoded as JSON"))
            }
            attributes = String(decoding: data, as: UTF8.self)
        }
        return .success(ParsedLogRecord(serial: serial, eventTimeMicros: micros, level: level,
                                        messageRange: nil, messageText: message, attributes: attributes))
    }

    // MARK: ISO-8601

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM|±HHMM)` to microseconds since the epoch
    /// (UTC). The fraction may have 1-9 digits (truncated to microseconds). Returns nil for
    /// anything else, including out-of-range fields (month 13, second 61, day 31 in April).
    public static func parseISO8601(_ s: UnsafeRawBufferPointer) -> Int64? {
        let n = s.count
        func digits(_ at: Int, _ count: Int) -> Int? {
            guard at + count <= n else { return nil }
            var v = 0
            for k in at..<(at + count) {
                let c = s[k]
                guard c >= 0x30 && c <= 0x39 else { return nil }
                v = v * 10 + Int(c - 0x30)
            }
            return v
        }
        guard n >= 20,
              let year = digits(0, 4), s[4] == UInt8(ascii: "-"),
              let month = digits(5, 2), s[7] == UInt8(ascii: "-"),
              let day = digits(8, 2), s[10] == UInt8(ascii: "T") || s[10] == UInt8(ascii: "t"),
              let hour = digits(11, 2), s[13] == UInt8(ascii: ":"),
              let minute = digits(14, 2), s[16] == UInt8(ascii: ":"),
              let second = digits(17, 2)
        else { return nil }
        guard year >= 1, month >= 1, month <= 12, day >= 1, day <= daysInMonth(year, month),
              hour <= 23, minute <= 59, second <= 60 else { return nil }
        var i = 19
        var micros = 0
        if i < n && s[i] == UInt8(ascii: ".") {
            i += 1
            let start = i
            var scale = 100_000
            while i < n, s[i] >= 0x30, s[i] <= 0x39 {
                if i - start < 6 { micros += Int(s[i] - 0x30) * scale; scale /= 10 }
                i += 1
            }
            guard i > start, i - start <= 9 else { return nil }
        }
        guard i < n else { return nil }
        var offsetSeconds = 0
        switch s[i] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            i += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            let sign = s[i] == UInt8(ascii: "-") ? -1 : 1
            guard let oh = digits(i + 1, 2), oh <= 23 else { return nil }
            var om = 0
            if i + 3 < n && s[i + 3] == UInt8(ascii: ":") {
                guard let m = digits(i + 4, 2) else { return nil }
                om = m
                i += 6
            } else if let m = digits(i + 3, 2) {
                om = m
                i += 5
            } else {
                return nil
            }
            guard om <= 59 else { return nil }
            offsetSeconds = sign * (oh * 3600 + om * 60)
        default:
            return nil
        }
        guard i == n else { return nil }
        let days = daysFromCivil(year, month, day)
        let seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetSeconds)
        return seconds * 1_000_000 + Int64(micros)
    }

    static func daysInMonth(_ y: Int, _ m: Int) -> Int {
        switch m {
        case 2: return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// Strict UTF-8 validation (no overlongs, no surrogates, max U+10FFFF), with an ASCII fast path.
    func validateUTF8(_ b: UnsafeRawBufferPointer) -> Bool {
        guard let base = b.baseAddress else { return true }
        var i = 0
        let n = b.count
        while i < n {
            // Eight ASCII bytes at a time: log lines are mostly ASCII, and a byte at a time was
            // 5% of the poll thread (perf, 3,000,000 records).
            while i + 8 <= n && base.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
                i += 8
            }
            guard i < n else { break }
            let c = b[i]
            if c < 0x80 { i += 1; continue }
            let need: Int
            var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
            switch c {
            case 0xC2...0xDF: need = 1
            case 0xE0: need = 2; lo = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: need = 2
            case 0xED: need = 2; hi = 0x9F
            case 0xF0: need = 3; lo = 0x90
            case 0xF1...0xF3: need = 3
            case 0xF4: need = 3; hi = 0x8F
            default: return false
            }
            guard i + need < n else { return false }
            let c1 = b[i + 1]
            guard c1 >= lo && c1 <= hi else { return false }
            for k in 2...max(2, need) where k <= need {
                let ck = b[i + k]
                guard ck >= 0x80 && ck <= 0xBF else { return false }
            }
            i += need + 1
        }
        return true
    }
}
