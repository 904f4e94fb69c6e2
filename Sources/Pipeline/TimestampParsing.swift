import Foundation
import TidemarkConfig

// Reading timestamps and numbers: the parsing half of the `[[schema.fields]]` types whose
// configuration half (spellings, pattern compilation) is TidemarkConfig's FieldTypes.swift.

extension TimestampFormat {
    /// Microseconds per unit of an epoch format, nil for string formats.
    var epochScale: Double? {
        switch self {
        case .epochSeconds: return 1_000_000
        case .epochMillis: return 1_000
        case .epochMicros: return 1
        case .rfc3339, .pattern: return nil
        }
    }

    /// Reads a timestamp from text (a string value or a regex group): microseconds since the
    /// epoch, or nil when the text is not in this format.
    func parse(text: UnsafeRawBufferPointer) -> Int64? {
        switch self {
        case .rfc3339: return LogRecordParser.parseISO8601(text)
        case .pattern(let p): return p.parse(text)
        case .epochSeconds, .epochMillis, .epochMicros:
            guard let number = NumberText.parse(text) else { return nil }
            return epochMicros(number)
        }
    }

    /// An epoch number in this format's unit as microseconds; nil when out of range or not an
    /// epoch format.
    func epochMicros(_ n: NumberText.Value) -> Int64? {
        guard let scale = epochScale else { return nil }
        switch n {
        case .integer(let v):
            let (m, o) = v.multipliedReportingOverflow(by: Int64(scale))
            return o ? nil : m
        case .double(let d):
            let m = (d * scale).rounded()
            guard m.isFinite, m > -9.2e18, m < 9.2e18 else { return nil }
            return Int64(m)
        }
    }
}

extension StrftimePattern {
    static let monthNames: [UInt32] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
        .map { $0.utf8.reduce(UInt32(0)) { $0 << 8 | UInt32($1) } }

    /// Microseconds since the epoch, or nil when `s` does not match.
    public func parse(_ s: UnsafeRawBufferPointer) -> Int64? {
        let n = s.count
        var i = 0
        var year = 1970, month = 1, day = 1, yday: Int?, hour = 0, minute = 0, second = 0, micros = 0, offset = 0
        func digits(min: Int, max: Int) -> Int? {
            var v = 0, k = 0
            while k < max, i < n, s[i] >= 0x30, s[i] <= 0x39 { v = v * 10 + Int(s[i] - 0x30); i += 1; k += 1 }
            return k >= min ? v : nil
        }
        for t in tokens {
            switch t {
            case .literal(let c):
                guard i < n, s[i] == c else { return nil }
                i += 1
            case .year: guard let v = digits(min: 4, max: 4) else { return nil }; year = v
            case .month: guard let v = digits(min: 1, max: 2) else { return nil }; month = v
            case .day: guard let v = digits(min: 1, max: 2) else { return nil }; day = v
            case .spaceDay:
                if i < n, s[i] == 0x20 { i += 1 }
                guard let v = digits(min: 1, max: 2) else { return nil }; day = v
            case .dayOfYear: guard let v = digits(min: 1, max: 3) else { return nil }; yday = v
            case .hour: guard let v = digits(min: 1, max: 2) else { return nil }; hour = v
            case .minute: guard let v = digits(min: 1, max: 2) else { return nil }; minute = v
            case .second: guard let v = digits(min: 1, max: 2) else { return nil }; second = v
            case .fraction:
                let start = i
                var scale = 100_000
                micros = 0
                while i < n, s[i] >= 0x30, s[i] <= 0x39, i - start < 9 {
                    if i - start < 6 { micros += Int(s[i] - 0x30) * scale; scale /= 10 }
                    i += 1
                }
                guard i > start else { return nil }
            case .monthName:
                guard i + 3 <= n else { return nil }
                var key: UInt32 = 0
                for k in i..<(i + 3) { key = key << 8 | UInt32(s[k] | 0x20) }
                guard let m = Self.monthNames.firstIndex(of: key) else { return nil }
                month = m + 1
                i += 3
            case .zone:
                guard i < n else { return nil }
                if s[i] == UInt8(ascii: "Z") || s[i] == UInt8(ascii: "z") { i += 1; offset = 0; continue }
                guard s[i] == UInt8(ascii: "+") || s[i] == UInt8(ascii: "-") else { return nil }
                let sign = s[i] == UInt8(ascii: "-") ? -1 : 1
                i += 1
                guard let oh = digits(min: 2, max: 2) else { return nil }
                if i < n, s[i] == UInt8(ascii: ":") { i += 1 }
                guard let om = digits(min: 2, max: 2), oh <= 23, om <= 59 else { return nil }
                offset = sign * (oh * 3600 + om * 60)
            }
        }
        guard i == n, year >= 1, month >= 1, month <= 12, hour <= 23, minute <= 59, second <= 60 else { return nil }
        let days: Int
        if let yday {
            let leap = LogRecordParser.daysInMonth(year, 2) == 29
            guard yday >= 1, yday <= (leap ? 366 : 365) else { return nil }
            days = LogRecordParser.daysFromCivil(year, 1, 1) + yday - 1
        } else {
            guard day >= 1, day <= LogRecordParser.daysInMonth(year, month) else { return nil }
            days = LogRecordParser.daysFromCivil(year, month, day)
        }
        let seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offset)
        return seconds * 1_000_000 + Int64(micros)
    }
}

/// Parses JSON-grammar numbers from bytes without allocating: integers exactly, other numbers
/// by the exact fast path (mantissa < 2^53, |exponent| <= 22) or `strtod`.
enum NumberText {
    enum Value: Equatable { case integer(Int64), double(Double) }

    static let powersOf10: [Double] = (0...22).map { pow(10, Double($0)) }

    /// The number `s` holds (optional surrounding spaces not allowed), or nil.
    static func parse(_ s: UnsafeRawBufferPointer) -> Value? {
        let n = s.count
        guard n > 0, n <= 400 else { return nil }
        var i = 0
        let negative = s[0] == UInt8(ascii: "-")
        if negative || s[0] == UInt8(ascii: "+") { i = 1 }
        var mantissa: UInt64 = 0
        var digits = 0, dropped = 0
        var exponent = 0
        var integral = true
        let intStart = i
        while i < n, s[i] >= 0x30, s[i] <= 0x39 {
            if digits < 19 { mantissa = mantissa * 10 + UInt64(s[i] - 0x30); if mantissa > 0 { digits += 1 } } else { dropped += 1 }
            i += 1
        }
        var sawDigits = i > intStart
        if i < n, s[i] == UInt8(ascii: ".") {
            integral = false
            i += 1
            let fracStart = i
            while i < n, s[i] >= 0x30, s[i] <= 0x39 {
                if digits < 19 { mantissa = mantissa * 10 + UInt64(s[i] - 0x30); exponent -= 1; if mantissa > 0 { digits += 1 } }
                i += 1
            }
            sawDigits = sawDigits || i > fracStart
        }
        guard sawDigits else { return nil }
        if i < n, s[i] == UInt8(ascii: "e") || s[i] == UInt8(ascii: "E") {
            integral = false
            i += 1
            var expNegative = false
            if i < n, s[i] == UInt8(ascii: "-") || s[i] == UInt8(ascii: "+") { expNegative = s[i] == UInt8(ascii: "-"); i += 1 }
            let expStart = i
            var e = 0
            while i < n, s[i] >= 0x30, s[i] <= 0x39 { if e < 100_000 { e = e * 10 + Int(s[i] - 0x30) }; i += 1 }
            guard i > expStart else { return nil }
            exponent += expNegative ? -e : e
        }
        guard i == n else { return nil }
        if integral && dropped == 0 {
            if negative {
                if mantissa <= UInt64(Int64.max) { return .integer(-Int64(mantissa)) }
                if mantissa == UInt64(Int64.max) + 1 { return .integer(Int64.min) }
            } else if mantissa <= UInt64(Int64.max) {
                return .integer(Int64(mantissa))
            }
        }
        exponent += dropped
        if mantissa < (1 << 53) && abs(exponent) <= 22 {
            let m = Double(mantissa)
            let v = exponent < 0 ? m / powersOf10[-exponent] : m * powersOf10[exponent]
            return .double(negative ? -v : v)
        }
        // Rare: long mantissas or large exponents. strtod rounds correctly.
        var buffer = [CChar](repeating: 0, count: n + 1)
        for k in 0..<n { buffer[k] = CChar(bitPattern: s[k]) }
        let v = strtod(buffer, nil)
        return v.isFinite ? .double(v) : nil
    }

    /// The value as an Int64 when it is integral and in range.
    static func int64(_ v: Value) -> Int64? {
        switch v {
        case .integer(let i): return i
        case .double(let d):
            guard d.rounded(.towardZero) == d, d >= -9.223372036854775e18, d < 9.223372036854775e18 else { return nil }
            return Int64(d)
        }
    }

    static func double(_ v: Value) -> Double {
        switch v {
        case .integer(let i): return Double(i)
        case .double(let d): return d
        }
    }
}
