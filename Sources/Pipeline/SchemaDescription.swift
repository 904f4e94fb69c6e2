import Crypto
import Foundation
import Parquet

/// Columns every mapped object ends with, and the optional Kafka ones.
public enum AlwaysPresentColumns {
    /// The names no configured field may take.
    public static let reserved: Set<String> = ["ingest_time", "kafka_topic", "kafka_partition", "kafka_offset",
                                               "kafka_timestamp", "kafka_key", "kafka_headers", "attributes", "value"]
}

/// The output schema a configuration produces: the Parquet columns, and a canonical JSON
/// description with its SHA-256 fingerprint (written into every object's footer as
/// `tidemark-schema` / `tidemark-schema-fingerprint`, and into the manifest's `schemas` table).
public struct SchemaDescription: Sendable, Equatable {
    /// Canonical JSON: keys sorted, no spaces.
    public var json: String
    /// Lower-case hex SHA-256 of ``json``'s UTF-8 bytes.
    public var fingerprint: String

    /// Describes `json` (canonical text as produced by ``RecordParser``).
    public init(json: String) {
        self.json = json
        self.fingerprint = SHA256.hash(data: Array(json.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// The schema change rule: `self` (the configured schema) may replace `previous` (the last one
    /// recorded) when they are equal, or when `self` only appends optional fields (and may change
    /// defaults or the event-time field). Returns nil when allowed, else what changed, naming the field.
    public func incompatibility(with previous: SchemaDescription) -> String? {
        guard previous.fingerprint != fingerprint else { return nil }
        guard let old = Self.decode(previous.json) else { return "the recorded schema cannot be read" }
        guard let new = Self.decode(json) else { return "the configured schema cannot be read" }
        if old.format != new.format { return "input format changed from \(old.format) to \(new.format)" }
        for (key, value) in old.options where new.options[key] != value {
            return "[schema] or [input] option \(key) changed from \(value) to \(new.options[key] ?? "(unset)")"
        }
        for (key, value) in new.options where old.options[key] == nil {
            return "option \(key) was added (\(value))"
        }
        for (i, o) in old.fields.enumerated() {
            guard i < new.fields.count else { return "field '\(o.name)' was removed" }
            let n = new.fields[i]
            if n.name != o.name {
                return new.fields.contains(where: { $0.name == o.name })
                    ? "field '\(o.name)' moved (fields may only be appended)"
                    : "field '\(o.name)' was removed or renamed (to '\(n.name)'?)"
            }
            if n.type != o.type { return "field '\(o.name)' changed type from \(o.type) to \(n.type)" }
            if n.required != o.required {
                return "field '\(o.name)' changed from \(o.required ? "required" : "optional") to \(n.required ? "required" : "optional")"
            }
            if n.source != o.source { return "field '\(o.name)' changed source from '\(o.source)' to '\(n.source)'" }
            if n.timestampFormat != o.timestampFormat {
                return "field '\(o.name)' changed timestamp_format from \(o.timestampFormat) to \(n.timestampFormat)"
            }
        }
        for n in new.fields.dropFirst(old.fields.count) where n.required {
            return "new field '\(n.name)' is required (only optional fields may be added)"
        }
        return nil
    }

    struct Decoded {
        struct Field { var name, type, source, timestampFormat: String; var required: Bool }
        var format: String
        var fields: [Field]
        var options: [String: String]
    }

    static func decode(_ json: String) -> Decoded? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
              let format = object["format"] as? String else { return nil }
        var fields: [Decoded.Field] = []
        for f in object["fields"] as? [[String: Any]] ?? [] {
            guard let name = f["name"] as? String, let type = f["type"] as? String else { return nil }
            fields.append(.init(name: name, type: type, source: f["source"] as? String ?? name,
                                timestampFormat: f["timestamp_format"] as? String ?? "",
                                required: (f["required"] as? Bool) ?? false))
        }
        var options: [String: String] = [:]
        for key in ["unmapped", "include_key", "include_headers", "pattern"] {
            if let v = object[key] { options[key] = "\(v)" }
        }
        return Decoded(format: format, fields: fields, options: options)
    }
}

/// JSON text helpers for the canonical description and the attribute/header columns.
enum JSONText {
    /// Appends `s` as a JSON string literal (quotes included).
    static func appendString(_ s: some StringProtocol, to out: inout [UInt8]) {
        out.append(0x22)
        for b in s.utf8 {
            switch b {
            case 0x22: out += [0x5C, 0x22]
            case 0x5C: out += [0x5C, 0x5C]
            case 0x0A: out += [0x5C, UInt8(ascii: "n")]
            case 0x0D: out += [0x5C, UInt8(ascii: "r")]
            case 0x09: out += [0x5C, UInt8(ascii: "t")]
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out += [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 15)]]
            default: out.append(b)
            }
        }
        out.append(0x22)
    }

    static func string(_ s: some StringProtocol) -> String {
        var out: [UInt8] = []
        appendString(s, to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}

/// The `kafka_key` rule: a key that is valid UTF-8 (and does not itself start with `base64:`)
/// is stored as its text; any other key as `base64:` followed by the standard Base64 of its
/// bytes; no key is null. So every stored value decodes back to the exact key bytes.
public enum KafkaKeyText {
    /// The column text for `bytes`.
    public static func text(_ bytes: UnsafeRawBufferPointer) -> String {
        if let s = String(validating: bytes, as: UTF8.self), !s.hasPrefix("base64:") { return s }
        return "base64:" + Data(bytes).base64EncodedString()
    }
}
