import Foundation

/// A small TOML reader for the engine's configuration file.
///
/// Hand-written on purpose: the Swift TOML package available here (LebJe/TOMLKit 0.6.0) cannot
/// be resolved offline, because its manifest depends on karwa/swift-checkit, which is not
/// available; see docs/architecture.md. This reader covers the TOML the config uses: tables
/// (`[a]`, `[a.b]`), arrays of tables (`[[a.b]]`), bare and quoted keys, dotted keys, basic and literal strings (with escapes),
/// integers (with `_`), floats, booleans, arrays (multi-line allowed), inline tables, and
/// comments. Anything else is a ``TOMLError`` naming the line.
public enum TOMLValue: Sendable, Equatable {
    case string(String)
    case integer(Int64)
    case float(Double)
    case boolean(Bool)
    case array([TOMLValue])
    case table([String: TOMLValue])

    /// A short type name for error messages.
    public var typeName: String {
        switch self {
        case .string: return "string"
        case .integer: return "integer"
        case .float: return "float"
        case .boolean: return "boolean"
        case .array: return "array"
        case .table: return "table"
        }
    }
}

/// A syntax error, with the 1-based line number.
public struct TOMLError: Error, CustomStringConvertible, Sendable {
    public var line: Int
    public var message: String
    public var description: String { "line \(line): \(message)" }
}

public enum TOML {
    /// Parses a document into its root table.
    public static func parse(_ text: String) throws -> [String: TOMLValue] {
        var p = Parser(bytes: Array(text.utf8))
        return try p.document()
    }

    struct Parser {
        let bytes: [UInt8]
        var i = 0
        var line = 1
        var root: [String: TOMLValue] = [:]
        var current: [String] = []
        var definedTables: Set<[String]> = []
        /// The `[[array.table]]` being filled, if the last header was one.
        var arrayTable: [String]?

        init(bytes: [UInt8]) { self.bytes = bytes }

        func fail(_ message: String) -> TOMLError { TOMLError(line: line, message: message) }

        var atEnd: Bool { i >= bytes.count }
        func peek(_ k: Int = 0) -> UInt8? { i + k < bytes.count ? bytes[i + k] : nil }

        mutating func skipSpaces() {
            while let c = peek(), c == 0x20 || c == 0x09 { i += 1 }
        }

        /// Skips spaces, comments and newlines.
        mutating func skipBlank() {
            while let c = peek() {
                if c == 0x20 || c == 0x09 || c == 0x0D { i += 1 } else if c == 0x0A { i += 1; line += 1 } else if c == UInt8(ascii: "#") {
                    while let d = peek(), d != 0x0A { i += 1 }
                } else { break }
            }
        }

        mutating func endOfLine() throws {
            skipSpaces()
            if peek() == UInt8(ascii: "#") { while let d = peek(), d != 0x0A { i += 1 } }
            if peek() == 0x0D { i += 1 }
            guard atEnd || peek() == 0x0A else { throw fail("expected end of line") }
        }

        mutating func document() throws -> [String: TOMLValue] {
            while true {
                skipBlank()
                guard let c = peek() else { break }
                if c == UInt8(ascii: "["), peek(1) == UInt8(ascii: "[") {
                    // [[a.b]]: appends a table to the array a.b; keys below go into it.
                    i += 2
                    skipSpaces()
                    let path = try keyPath()
                    skipSpaces()
                    guard peek() == UInt8(ascii: "]"), peek(1) == UInt8(ascii: "]") else { throw fail("expected ]] after array table name") }
                    i += 2
                    try Self.appendArrayTable(&root, path[...], line: line)
                    current = path
                    arrayTable = path
                    try endOfLine()
                } else if c == UInt8(ascii: "[") {
                    i += 1
                    arrayTable = nil
                    skipSpaces()
                    let path = try keyPath()
                    skipSpaces()
                    guard peek() == UInt8(ascii: "]") else { throw fail("expected ] after table name") }
                    i += 1
                    guard !definedTables.contains(path) else { throw fail("table [\(path.joined(separator: "."))] defined twice") }
                    definedTables.insert(path)
                    try ensureTable(path)
                    current = path
                    try endOfLine()
                } else {
                    let path = try keyPath()
                    skipSpaces()
                    guard peek() == UInt8(ascii: "=") else { throw fail("expected = after key '\(path.joined(separator: "."))'") }
                    i += 1
                    skipSpaces()
                    let v = try value()
                    if let a = arrayTable {
                        let line = self.line
                        try Self.withLastArrayTable(&root, a[...], line: line) { try Self.insert(into: &$0, path, v, line: line) }
                    } else {
                        try insert(current + path, v)
                    }
                    try endOfLine()
                }
            }
            return root
        }

        mutating func keyPath() throws -> [String] {
            var parts = [try key()]
            skipSpaces()
            while peek() == UInt8(ascii: ".") {
                i += 1
                skipSpaces()
                parts.append(try key())
                skipSpaces()
            }
            return parts
        }

        mutating func key() throws -> String {
            if peek() == UInt8(ascii: "\"") { return try basicString() }
            if peek() == UInt8(ascii: "'") { return try literalString() }
            let start = i
            while let c = peek(), (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
                || c == UInt8(ascii: "_") || c == UInt8(ascii: "-") { i += 1 }
            guard i > start else { throw fail("expected a key") }
            return String(decoding: bytes[start..<i], as: UTF8.self)
        }

        mutating func value() throws -> TOMLValue {
            guard let c = peek() else { throw fail("expected a value") }
            switch c {
            case UInt8(ascii: "\""):
                if peek(1) == UInt8(ascii: "\""), peek(2) == UInt8(ascii: "\"") { throw fail("multi-line strings are not supported") }
                return .string(try basicString())
            case UInt8(ascii: "'"): return .string(try literalString())
            case UInt8(ascii: "["): return try array()
            case UInt8(ascii: "{"): return try inlineTable()
            case UInt8(ascii: "t"), UInt8(ascii: "f"):
                if match("true") { return .boolean(true) }
                if match("false") { return .boolean(false) }
                throw fail("expected a value")
            default:
                return try number()
            }
        }

        mutating func match(_ word: String) -> Bool {
            let w = Array(word.utf8)
            guard i + w.count <= bytes.count, Array(bytes[i..<(i + w.count)]) == w else { return false }
            if let next = peek(w.count), (next >= 0x61 && next <= 0x7A) || next == UInt8(ascii: "_") { return false }
            i += w.count
            return true
        }

        mutating func number() throws -> TOMLValue {
            let start = i
            while let c = peek(), c != 0x20, c != 0x09, c != 0x0A, c != 0x0D, c != UInt8(ascii: ","),
                  c != UInt8(ascii: "]"), c != UInt8(ascii: "}"), c != UInt8(ascii: "#") { i += 1 }
            let raw = String(decoding: bytes[start..<i], as: UTF8.self)
            let text = raw.replacingOccurrences(of: "_", with: "")
            if let v = Int64(text) { return .integer(v) }
            if text.contains(".") || text.lowercased().contains("e"), let d = Double(text) { return .float(d) }
            throw fail("invalid value '\(raw)' (strings need quotes)")
        }

        mutating func basicString() throws -> String {
            i += 1
            var out: [UInt8] = []
            while true {
                guard let c = peek() else { throw fail("unterminated string") }
                i += 1
                switch c {
                case UInt8(ascii: "\""): return String(decoding: out, as: UTF8.self)
                case 0x0A: throw fail("newline in string")
                case UInt8(ascii: "\\"):
                    guard let e = peek() else { throw fail("unterminated escape") }
                    i += 1
                    switch e {
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "\""): out.append(0x22)
                    case UInt8(ascii: "\\"): out.append(0x5C)
                    case UInt8(ascii: "u"), UInt8(ascii: "U"):
                        let n = e == UInt8(ascii: "u") ? 4 : 8
                        guard i + n <= bytes.count, let v = UInt32(String(decoding: bytes[i..<(i + n)], as: UTF8.self), radix: 16),
                              let scalar = Unicode.Scalar(v) else { throw fail("bad unicode escape") }
                        out.append(contentsOf: Array(String(Character(scalar)).utf8))
                        i += n
                    default: throw fail("unknown escape \\\(Character(Unicode.Scalar(e)))")
                    }
                default: out.append(c)
                }
            }
        }

        mutating func literalString() throws -> String {
            i += 1
            let start = i
            while let c = peek(), c != UInt8(ascii: "'") {
                guard c != 0x0A else { throw fail("newline in string") }
                i += 1
            }
            guard peek() == UInt8(ascii: "'") else { throw fail("unterminated string") }
            defer { i += 1 }
            return String(decoding: bytes[start..<i], as: UTF8.self)
        }

        mutating func array() throws -> TOMLValue {
            i += 1
            var items: [TOMLValue] = []
            while true {
                skipBlank()
                if peek() == UInt8(ascii: "]") { i += 1; return .array(items) }
                items.append(try value())
                skipBlank()
                if peek() == UInt8(ascii: ",") { i += 1; continue }
                skipBlank()
                guard peek() == UInt8(ascii: "]") else { throw fail("expected , or ] in array") }
            }
        }

        mutating func inlineTable() throws -> TOMLValue {
            i += 1
            var table: [String: TOMLValue] = [:]
            skipSpaces()
            if peek() == UInt8(ascii: "}") { i += 1; return .table(table) }
            while true {
                skipSpaces()
                let path = try keyPath()
                skipSpaces()
                guard peek() == UInt8(ascii: "=") else { throw fail("expected = in inline table") }
                i += 1
                skipSpaces()
                let v = try value()
                try Self.insert(into: &table, path, v, line: line)
                skipSpaces()
                if peek() == UInt8(ascii: ",") { i += 1; continue }
                guard peek() == UInt8(ascii: "}") else { throw fail("expected , or } in inline table") }
                i += 1
                return .table(table)
            }
        }

        mutating func ensureTable(_ path: [String]) throws {
            try Self.ensure(&root, path[...], line: line)
        }

        static func ensure(_ table: inout [String: TOMLValue], _ path: ArraySlice<String>, line: Int) throws {
            guard let first = path.first else { return }
            var sub: [String: TOMLValue]
            switch table[first] {
            case nil: sub = [:]
            case .table(let t)?: sub = t
            case let v?: throw TOMLError(line: line, message: "key '\(first)' is a \(v.typeName), not a table")
            }
            try ensure(&sub, path.dropFirst(), line: line)
            table[first] = .table(sub)
        }

        static func appendArrayTable(_ table: inout [String: TOMLValue], _ path: ArraySlice<String>, line: Int) throws {
            guard let first = path.first else { return }
            if path.count == 1 {
                switch table[first] {
                case nil: table[first] = .array([.table([:])])
                case .array(var items)? where items.allSatisfy({ if case .table = $0 { return true } else { return false } }):
                    items.append(.table([:]))
                    table[first] = .array(items)
                case let v?: throw TOMLError(line: line, message: "key '\(first)' is a \(v.typeName), not an array of tables")
                }
                return
            }
            var sub: [String: TOMLValue]
            switch table[first] {
            case nil: sub = [:]
            case .table(let t)?: sub = t
            case let v?: throw TOMLError(line: line, message: "key '\(first)' is a \(v.typeName), not a table")
            }
            try appendArrayTable(&sub, path.dropFirst(), line: line)
            table[first] = .table(sub)
        }

        static func withLastArrayTable(_ table: inout [String: TOMLValue], _ path: ArraySlice<String>, line: Int,
                                       _ body: (inout [String: TOMLValue]) throws -> Void) throws {
            guard let first = path.first else { return }
            if path.count == 1 {
                guard case .array(var items)? = table[first], case .table(var last)? = items.last else {
                    throw TOMLError(line: line, message: "key '\(first)' is not an array of tables")
                }
                try body(&last)
                items[items.count - 1] = .table(last)
                table[first] = .array(items)
                return
            }
            guard case .table(var sub)? = table[first] else { throw TOMLError(line: line, message: "key '\(first)' is not a table") }
            try withLastArrayTable(&sub, path.dropFirst(), line: line, body)
            table[first] = .table(sub)
        }

        mutating func insert(_ path: [String], _ v: TOMLValue) throws {
            try Self.insert(into: &root, path, v, line: line)
        }

        static func insert(into table: inout [String: TOMLValue], _ path: [String], _ v: TOMLValue, line: Int) throws {
            if path.count == 1 {
                guard table[path[0]] == nil else { throw TOMLError(line: line, message: "key '\(path[0])' defined twice") }
                table[path[0]] = v
                return
            }
            var sub: [String: TOMLValue]
            switch table[path[0]] {
            case nil: sub = [:]
            case .table(let t)?: sub = t
            case let other?: throw TOMLError(line: line, message: "key '\(path[0])' is a \(other.typeName), not a table")
            }
            try insert(into: &sub, Array(path.dropFirst()), v, line: line)
            table[path[0]] = .table(sub)
        }
    }
}
