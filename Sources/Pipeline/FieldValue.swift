import TidemarkConfig

/// A value of one configured field in a parsed record. String values that lie in the input as
/// they are (no escapes) are byte ranges of it: no copy, no allocation.
public enum FieldValue: Sendable, Equatable {
    /// Missing (a missing optional field without a default, or JSON `null`).
    case null
    /// An `int64` field's value.
    case int64(Int64)
    /// A `double` field's value.
    case double(Double)
    /// A `bool` field's value.
    case bool(Bool)
    /// Microseconds since the epoch, UTC.
    case timestamp(Int64)
    /// A string: these bytes of the input (valid UTF-8).
    case slice(Range<Int>)
    /// A string that does not lie in the input as-is (decoded escapes, regex groups, defaults).
    case text(String)

    /// The string this value holds, resolving a ``slice(_:)`` against `input`; nil for other cases.
    public func string(in input: UnsafeRawBufferPointer) -> String? {
        switch self {
        case .slice(let r): return String(decoding: UnsafeRawBufferPointer(rebasing: input[r]), as: UTF8.self)
        case .text(let s): return s
        default: return nil
        }
    }
}

/// One configured field as the mappers use it.
struct FieldPlan: Sendable {
    var name: String
    var type: FieldType
    var timestampFormat: TimestampFormat
    var required: Bool
    /// The value of a missing field (``FieldValue/null`` when it has no default).
    var defaultValue: FieldValue

    func mismatch(_ found: String) -> RejectReason {
        RejectReason("field '\(name)': expected \(type.rawValue)\(type == .timestamp ? " (\(timestampFormat.configValue))" : ""), found \(found)")
    }

    /// Converts text (a JSON string's content, a regex group, a default) to the field's type.
    /// `range` is the text's place in the input when it lies there as-is, so a string field
    /// keeps it as a slice.
    func convert(text: UnsafeRawBufferPointer, range: Range<Int>?, what: String = "string") -> Result<FieldValue, RejectReason> {
        switch type {
        case .string:
            if let range { return .success(.slice(range)) }
            return .success(.text(String(decoding: text, as: UTF8.self)))
        case .int64:
            guard let n = NumberText.parse(text), let v = NumberText.int64(n) else { return .failure(mismatch("\(what) that is not an integer")) }
            return .success(.int64(v))
        case .double:
            guard let n = NumberText.parse(text) else { return .failure(mismatch("\(what) that is not a number")) }
            return .success(.double(NumberText.double(n)))
        case .bool:
            if text.elementsEqual("true".utf8) { return .success(.bool(true)) }
            if text.elementsEqual("false".utf8) { return .success(.bool(false)) }
            return .failure(mismatch("\(what) that is not true or false"))
        case .timestamp:
            guard let micros = timestampFormat.parse(text: text) else { return .failure(mismatch("\(what) not in that format")) }
            return .success(.timestamp(micros))
        }
    }
}
