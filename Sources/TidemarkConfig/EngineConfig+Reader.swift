import Foundation

extension EngineConfig {
    /// Reads typed values from the TOML root, with environment overrides taking precedence.
    struct Reader {
        let root: [String: TOMLValue]
        let env: [String: String]
        let source: String
        /// Resolves references in the values of TIDEMARK_KAFKA_PROPERTIES (the other overrides
        /// arrive resolved).
        let references: References

        func checkUnknown() throws {
            for (section, value) in root {
                guard let known = EngineConfig.keys[section] else {
                    throw ConfigError(key: section, message: "unknown section [\(section)] in \(source); known: "
                        + EngineConfig.keys.keys.sorted().joined(separator: ", "))
                }
                guard case .table(let table) = value else {
                    throw ConfigError(key: section, message: "must be a table ([\(section)])")
                }
                for key in table.keys where known[key] == nil {
                    throw ConfigError(key: "\(section).\(key)", message: "unknown key in \(source); [\(section)] takes: "
                        + known.keys.sorted().joined(separator: ", "))
                }
            }
        }

        static func envName(_ section: String, _ key: String) -> String {
            "TIDEMARK_\(section.uppercased())_\(key.uppercased())"
        }

        func fileHas(_ section: String, _ key: String) -> Bool {
            if case .table(let t)? = root[section], t[key] != nil { return true }
            return false
        }

        func raw(_ section: String, _ key: String) -> (TOMLValue?, String?) {
            if let e = env[Self.envName(section, key)] { return (nil, e) }
            if case .table(let t)? = root[section] { return (t[key], nil) }
            return (nil, nil)
        }

        func wrong(_ section: String, _ key: String, _ expected: String, _ v: TOMLValue) -> ConfigError {
            ConfigError(key: "\(section).\(key)", message: "expected \(expected), found \(v.typeName)")
        }

        func string(_ s: String, _ k: String) throws -> String? {
            switch raw(s, k) {
            case (_, let e?): return e
            case (.string(let v)?, _): return v
            case (let v?, _): throw wrong(s, k, "a string", v)
            default: return nil
            }
        }

        func stringList(_ s: String, _ k: String) throws -> [String]? {
            switch raw(s, k) {
            case (_, let e?): return e.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            case (.array(let items)?, _):
                return try items.map {
                    guard case .string(let v) = $0 else { throw wrong(s, k, "a list of strings", $0) }
                    return v
                }
            case (.string(let v)?, _): return [v]
            case (let v?, _): throw wrong(s, k, "a list of strings", v)
            default: return nil
            }
        }

        func stringTable(_ s: String, _ k: String) throws -> [String: String]? {
            var out: [String: String] = [:]
            if case .table(let t)? = root[s], let v = t[k] {
                guard case .table(let props) = v else { throw wrong(s, k, "a table", v) }
                for (pk, pv) in Self.flatten(props) { out[pk] = pv }
            }
            // TIDEMARK_KAFKA_PROPERTIES="a.b=c,d=e"
            if let e = env[Self.envName(s, k)] {
                for item in e.split(separator: ",") {
                    let kv = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                    guard kv.count == 2 else {
                        throw ConfigError(key: "\(s).\(k)", message: "\(Self.envName(s, k)) expects key=value[,key=value]")
                    }
                    out[kv[0]] = try references.resolve(kv[1], key: "\(s).\(k).\(kv[0])").value
                }
            }
            return out
        }

        /// Dotted TOML keys (`ssl.ca.location = "..."`) arrive nested; librdkafka wants them flat.
        static func flatten(_ t: [String: TOMLValue], prefix: String = "") -> [(String, String)] {
            t.flatMap { key, value -> [(String, String)] in
                let full = prefix.isEmpty ? key : prefix + "." + key
                switch value {
                case .table(let sub): return flatten(sub, prefix: full)
                case .string(let v): return [(full, v)]
                case .integer(let v): return [(full, String(v))]
                case .float(let v): return [(full, String(v))]
                case .boolean(let v): return [(full, v ? "true" : "false")]
                case .array(let items):
                    return [(full, items.map { if case .string(let v) = $0 { return v } else { return "\($0)" } }.joined(separator: ","))]
                }
            }
        }

        func int(_ s: String, _ k: String) throws -> Int? {
            switch raw(s, k) {
            case (_, let e?):
                guard let v = Int(e.replacingOccurrences(of: "_", with: "")) else {
                    throw ConfigError(key: "\(s).\(k)", message: "\(Self.envName(s, k))='\(e)' is not an integer")
                }
                return v
            case (.integer(let v)?, _): return Int(v)
            case (let v?, _): throw wrong(s, k, "an integer", v)
            default: return nil
            }
        }

        func bool(_ s: String, _ k: String) throws -> Bool? {
            switch raw(s, k) {
            case (_, let e?):
                switch e.lowercased() {
                case "true", "1", "yes": return true
                case "false", "0", "no": return false
                default: throw ConfigError(key: "\(s).\(k)", message: "\(Self.envName(s, k))='\(e)' is not a boolean")
                }
            case (.boolean(let v)?, _): return v
            case (let v?, _): throw wrong(s, k, "a boolean", v)
            default: return nil
            }
        }

        /// `[[schema.fields]]`: each table's keys checked, typed and named in errors as
        /// `schema.fields[i].key`.
        func schemaFields() throws -> [SchemaField] {
            guard case .table(let t)? = root["schema"], let v = t["fields"] else { return [] }
            guard case .array(let items) = v else { throw wrong("schema", "fields", "a list of tables ([[schema.fields]])", v) }
            let known = ["name", "source", "type", "timestamp_format", "required", "default"]
            return try items.enumerated().map { i, item in
                let key = "schema.fields[\(i)]"
                guard case .table(let f) = item else {
                    throw ConfigError(key: key, message: "expected a table ([[schema.fields]]), found \(item.typeName)")
                }
                for k in f.keys where !known.contains(k) {
                    throw ConfigError(key: "\(key).\(k)", message: "unknown key; a field takes: \(known.joined(separator: ", "))")
                }
                func text(_ k: String) throws -> String? {
                    switch f[k] {
                    case nil: return nil
                    case .string(let s)?: return s
                    case let other?: throw ConfigError(key: "\(key).\(k)", message: "expected a string, found \(other.typeName)")
                    }
                }
                guard let name = try text("name") else { throw ConfigError(key: "\(key).name", message: "is required") }
                var field = SchemaField(name: name, source: try text("source"))
                if let t = try text("type") {
                    guard let type = FieldType(rawValue: t) else {
                        throw ConfigError(key: "\(key).type", message: "'\(t)' is not one of string, int64, double, bool, timestamp")
                    }
                    field.type = type
                }
                if let t = try text("timestamp_format") {
                    guard let format = TimestampFormat(config: t) else {
                        throw ConfigError(key: "\(key).timestamp_format", message: "'\(t)' is not rfc3339, epoch_s, epoch_ms, "
                            + "epoch_us or a strftime pattern of %Y %m %d %e %j %H %M %S %f %b %z %T %%")
                    }
                    field.timestampFormat = format
                }
                switch f["required"] {
                case nil: break
                case .boolean(let b)?: field.required = b
                case let other?: throw ConfigError(key: "\(key).required", message: "expected a boolean, found \(other.typeName)")
                }
                switch f["default"] {
                case nil: break
                case .string(let s)?: field.defaultText = s
                case .integer(let n)?: field.defaultText = String(n)
                case .float(let d)?: field.defaultText = String(d)
                case .boolean(let b)?: field.defaultText = b ? "true" : "false"
                case let other?: throw ConfigError(key: "\(key).default", message: "expected a string, number or boolean, found \(other.typeName)")
                }
                return field
            }
        }

        func duration(_ s: String, _ k: String) throws -> Duration? {
            let text: String
            switch raw(s, k) {
            case (_, let e?): text = e
            case (.string(let v)?, _): text = v
            case (.integer(let v)?, _): text = String(v)
            case (let v?, _): throw wrong(s, k, "a duration string like \"5s\"", v)
            default: return nil
            }
            guard let d = EngineConfig.parseDuration(text) else {
                throw ConfigError(key: "\(s).\(k)", message: "'\(text)' is not a duration (e.g. 500ms, 5s, 2m, 1h)")
            }
            return d
        }

        func size(_ s: String, _ k: String) throws -> Int64? {
            let text: String
            switch raw(s, k) {
            case (_, let e?): text = e
            case (.string(let v)?, _): text = v
            case (.integer(let v)?, _): text = String(v)
            case (let v?, _): throw wrong(s, k, "a size like \"64MiB\" or bytes", v)
            default: return nil
            }
            guard let v = EngineConfig.parseSize(text) else {
                throw ConfigError(key: "\(s).\(k)", message: "'\(text)' is not a size (e.g. 64MiB, 1GiB, 1048576)")
            }
            return v
        }
    }
}
