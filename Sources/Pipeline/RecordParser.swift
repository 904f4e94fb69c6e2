import Foundation
import Parquet
import TidemarkConfig

/// A record parsed by ``RecordParser``, ready for ``StagedBatchWriter``. String values may be
/// byte ranges of the input it was parsed from: use it only while that input lives (inside
/// `message.withValue`).
public struct ParsedRecord: Sendable {
    enum Content: Sendable {
        /// The seed formats: OutputSchema's columns.
        case seed(ParsedLogRecord)
        /// A configured mapping: one value per field, and the unmapped members' JSON object.
        case fields([FieldValue], attributes: [UInt8]?)
        /// `raw`: the whole value (these bytes of the input).
        case raw(Range<Int>)
    }
    var content: Content
    /// The event time (the `event_time_field`'s value; `event_time` for the seed formats), nil
    /// when it is absent or the format has none.
    public var eventTimeMicros: Int64?

    /// The seed columns, for the seed formats.
    public var seed: ParsedLogRecord? {
        if case .seed(let r) = content { return r }
        return nil
    }

    /// The configured fields' values, in column order (empty for seed and raw).
    public var fieldValues: [FieldValue] {
        if case .fields(let v, _) = content { return v }
        return []
    }

    /// The `attributes` column: the unmapped JSON members as a JSON object, nil when none.
    public var attributesJSON: String? {
        if case .fields(_, let a?) = content { return String(decoding: a, as: UTF8.self) }
        return nil
    }

    /// The `value` column's bytes range, for `raw`.
    public var rawRange: Range<Int>? {
        if case .raw(let r) = content { return r }
        return nil
    }
}

/// The configured record parser: the input format (`[input] format`) and the field mapping
/// (`[schema]`), checked once at start. ``parse(_:)`` is total: every byte sequence yields a
/// ``ParsedRecord`` or a ``RejectReason`` (fuzzed in `RecordParserTests`).
public struct RecordParser: Sendable {
    enum Mode: Sendable {
        case seed
        case json(JSONPlan)
        case regex(RegexPlan)
        case raw
    }
    let mode: Mode
    let seedParser: LogRecordParser
    let fields: [FieldPlan]
    let eventTimeIndex: Int?
    /// Whether records carry an event time: the seed formats (`event_time`), or a configured
    /// `[schema] event_time_field`. A `[sink] path` with `{event_…}` needs one.
    public let hasEventTime: Bool
    /// The columns this parser's records are written as.
    public let layout: OutputLayout

    /// The parser of today's formats with default options (`format = "seed"`).
    public static let seed: RecordParser = {
        // swiftlint:disable:next force_try
        try! RecordParser(input: EngineConfig.Input(), schema: SchemaOptions())
    }()

    /// Builds and checks the parser for `input` and `schema`; a ``ConfigError`` names the key.
    public init(input: EngineConfig.Input, schema: SchemaOptions) throws {
        func fail(_ key: String, _ message: String) -> ConfigError { ConfigError(key: key, message: message) }
        let legacyFormat: InputFormat
        switch input.format {
        case .seed, .auto: legacyFormat = .auto
        case .text: legacyFormat = .text
        case .json, .regex, .raw: legacyFormat = .json
        }
        seedParser = LogRecordParser(format: legacyFormat, maxLineBytes: input.maxLineBytes)
        let configured = !schema.fields.isEmpty
        var formatName: String
        switch input.format {
        case .seed, .auto, .text:
            guard !configured else {
                throw fail("schema.fields", "format = \"\(input.format.rawValue)\" has fixed columns; use format = \"json\" or \"regex\" to map fields")
            }
            formatName = "seed"
        case .json: formatName = configured ? "json" : "seed"
        case .regex: formatName = "regex"
        case .raw:
            guard !configured else { throw fail("schema.fields", "format = \"raw\" has one column, value; fields are not used") }
            formatName = "raw"
        }
        if input.pattern != nil && input.format != .regex {
            throw fail("input.pattern", "is only used with format = \"regex\"")
        }
        guard ["attributes", "drop"].contains(schema.unmapped) else {
            throw fail("schema.unmapped", "'\(schema.unmapped)' must be attributes or drop")
        }

        // Fields: configured, or (regex without fields) every named group as an optional string.
        var fieldList = schema.fields
        var regexPlan: RegexPlan?
        if input.format == .regex {
            guard let pattern = input.pattern, !pattern.isEmpty else {
                throw fail("input.pattern", "is required with format = \"regex\" (named groups (?<name>...) become fields)")
            }
            let plan: RegexPlan
            do {
                plan = try RegexPlan(pattern: pattern)
            } catch {
                throw fail("input.pattern", "is not a valid regular expression: \(error)")
            }
            guard !plan.groupNames.isEmpty else { throw fail("input.pattern", "has no named group (?<name>...)") }
            if fieldList.isEmpty { fieldList = plan.groupNames.map { SchemaField(name: $0) } }
            regexPlan = plan
        }
        var names: Set<String> = []
        var plans: [FieldPlan] = []
        for (i, f) in fieldList.enumerated() {
            let key = "schema.fields[\(i)]"
            guard Self.isValidName(f.name) else { throw fail(key + ".name", "'\(f.name)' must match [a-z_][a-z0-9_]*") }
            guard !AlwaysPresentColumns.reserved.contains(f.name) else {
                throw fail(key + ".name", "'\(f.name)' is a column the engine writes itself (\(AlwaysPresentColumns.reserved.sorted().joined(separator: ", ")))")
            }
            guard names.insert(f.name).inserted else { throw fail(key + ".name", "'\(f.name)' is defined twice") }
            if f.type != .timestamp && f.timestampFormat != .rfc3339 {
                throw fail(key + ".timestamp_format", "is only used with type = \"timestamp\"")
            }
            if input.format == .json {
                guard !f.source.isEmpty, !f.path.contains(where: \.isEmpty) else {
                    throw fail(key + ".source", "'\(f.source)' is not a JSON path (a.b.c, $.a.b, @timestamp)")
                }
            } else if let regexPlan, !regexPlan.groupNames.contains(f.source) {
                throw fail(key + ".source", "'\(f.source)' is not a named group of input.pattern (groups: \(regexPlan.groupNames.joined(separator: ", ")))")
            }
            var plan = FieldPlan(name: f.name, type: f.type, timestampFormat: f.timestampFormat, required: f.required, defaultValue: .null)
            if let d = f.defaultText {
                guard !f.required else { throw fail(key + ".default", "a required field has no default") }
                var text = d
                switch text.withUTF8({ plan.convert(text: UnsafeRawBufferPointer($0), range: nil, what: "default") }) {
                case .success(let v): plan.defaultValue = v
                case .failure(let e): throw fail(key + ".default", "'\(d)': \(e)")
                }
            }
            plans.append(plan)
        }
        fields = plans
        var eventTime: Int?
        if let name = schema.eventTimeField {
            if formatName == "seed" {
                guard name == "event_time" else { throw fail("schema.event_time_field", "is event_time for the seed formats") }
            } else {
                guard let idx = plans.firstIndex(where: { $0.name == name }) else {
                    throw fail("schema.event_time_field", "'\(name)' is not a configured field")
                }
                guard plans[idx].type == .timestamp else {
                    throw fail("schema.event_time_field", "'\(name)' has type \(plans[idx].type.rawValue), not timestamp")
                }
                eventTime = idx
            }
        }
        eventTimeIndex = eventTime
        hasEventTime = formatName == "seed" || eventTime != nil
        switch formatName {
        case "seed": mode = .seed
        case "json": mode = .json(JSONPlan(paths: fieldList.map(\.path), collectUnmapped: schema.unmapped == "attributes"))
        case "regex":
            var plan = regexPlan!
            plan.sourceNames = fieldList.map { plan.internalName($0.source) }
            mode = .regex(plan)
        default: mode = .raw
        }
        layout = Self.makeLayout(format: formatName, fields: fieldList, input: input, schema: schema)
    }

    static func isValidName(_ s: String) -> Bool {
        guard let first = s.utf8.first, first == UInt8(ascii: "_") || (0x61...0x7A).contains(first) else { return false }
        return s.utf8.allSatisfy { $0 == UInt8(ascii: "_") || (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) }
    }

    /// Parses one Kafka message value.
    public func parse(_ value: UnsafeRawBufferPointer) -> Result<ParsedRecord, RejectReason> {
        switch mode {
        case .seed:
            switch seedParser.parse(value) {
            case .success(let r): return .success(ParsedRecord(content: .seed(r), eventTimeMicros: r.eventTimeMicros))
            case .failure(let e): return .failure(e)
            }
        case .raw:
            if value.count > seedParser.maxLineBytes {
                return .failure(RejectReason("line of \(value.count) bytes exceeds max_line_bytes \(seedParser.maxLineBytes)"))
            }
            guard seedParser.validateUTF8(value) else { return .failure(RejectReason("invalid UTF-8")) }
            return .success(ParsedRecord(content: .raw(0..<value.count), eventTimeMicros: nil))
        case .json(let plan):
            var end = value.count
            while end > 0 && (value[end - 1] == 0x0A || value[end - 1] == 0x0D) { end -= 1 }
            if end == 0 { return .failure(RejectReason("empty line")) }
            if end > seedParser.maxLineBytes { return .failure(RejectReason("line of \(end) bytes exceeds max_line_bytes \(seedParser.maxLineBytes)")) }
            let line = UnsafeRawBufferPointer(rebasing: value[0..<end])
            guard seedParser.validateUTF8(line) else { return .failure(RejectReason("invalid UTF-8")) }
            var mapper = JSONMapper(line, plan: plan, fields: fields)
            do {
                try mapper.run()
            } catch {
                return .failure(error)
            }
            return finish(&mapper.values, attributes: mapper.attributes.isEmpty ? nil : mapper.attributes)
        case .regex(let plan):
            var end = value.count
            while end > 0 && (value[end - 1] == 0x0A || value[end - 1] == 0x0D) { end -= 1 }
            if end == 0 { return .failure(RejectReason("empty line")) }
            if end > seedParser.maxLineBytes { return .failure(RejectReason("line of \(end) bytes exceeds max_line_bytes \(seedParser.maxLineBytes)")) }
            let line = UnsafeRawBufferPointer(rebasing: value[0..<end])
            guard seedParser.validateUTF8(line) else { return .failure(RejectReason("invalid UTF-8")) }
            var values = [FieldValue](repeating: .null, count: fields.count)
            switch plan.match(line, fields: fields, into: &values) {
            case .success: return finish(&values, attributes: nil)
            case .failure(let e): return .failure(e)
            }
        }
    }

    /// Applies defaults and required checks; picks the event time.
    func finish(_ values: inout [FieldValue], attributes: [UInt8]?) -> Result<ParsedRecord, RejectReason> {
        for k in values.indices {
            guard case .null = values[k] else { continue }
            let f = fields[k]
            if f.required { return .failure(RejectReason("missing required field '\(f.name)'")) }
            values[k] = f.defaultValue
        }
        var eventTime: Int64?
        if let e = eventTimeIndex, case .timestamp(let m) = values[e] { eventTime = m }
        return .success(ParsedRecord(content: .fields(values, attributes: attributes), eventTimeMicros: eventTime))
    }

    /// Convenience for tests and tools.
    public func parse(_ bytes: [UInt8]) -> Result<ParsedRecord, RejectReason> {
        bytes.withUnsafeBytes { parse($0) }
    }
}
