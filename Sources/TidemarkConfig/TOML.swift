import Foundation
internal import TOMLKit

/// The engine configuration file's values: what ``EngineConfig`` reads, after ``TOML/parse(_:)``
/// has turned a TOML document into plain Swift values.
///
/// Parsing is TOMLKit's (toml++ underneath, TOML 1.0). TOML's dates and times have no case here:
/// no configuration key takes one, so a date is an error naming its key (quote it to make it a string).
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

/// A document that is not TOML (or holds a value the configuration cannot use), with the 1-based
/// line and column where the parser gave up when it knows them.
public struct TOMLError: Error, CustomStringConvertible, Sendable {
    public var line: Int?
    public var column: Int?
    public var message: String
    public var description: String {
        switch (line, column) {
        case (let l?, let c?): return "line \(l), column \(c): \(message)"
        case (let l?, nil): return "line \(l): \(message)"
        default: return message
        }
    }
}

public enum TOML {
    /// Parses a document into its root table.
    public static func parse(_ text: String) throws -> [String: TOMLValue] {
        // toml++ reads the document as a C string: everything after a NUL byte would be dropped
        // silently, so a NUL is refused here, where its line is known.
        if let nul = text.utf8.firstIndex(of: 0) {
            let line = text.utf8[..<nul].reduce(1) { $1 == 0x0A ? $0 + 1 : $0 }
            throw TOMLError(line: line, column: nil, message: "NUL byte in the document")
        }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let e as TOMLParseError {
            throw TOMLError(line: e.source.begin.line, column: e.source.begin.column, message: e.description)
        }
        return try convert(table, path: [])
    }

    private static func convert(_ table: TOMLTable, path: [String]) throws -> [String: TOMLValue] {
        var out: [String: TOMLValue] = [:]
        for key in table.keys {
            guard let node = table[key] else { continue }
            out[key] = try convert(node, path: path + [key])
        }
        return out
    }

    private static func convert(_ node: any TOMLValueConvertible, path: [String]) throws -> TOMLValue {
        switch node.type {
        case .string: if let v = node.string { return .string(v) }
        case .int: if let v = node.int { return .integer(Int64(v)) }
        case .double: if let v = node.double { return .float(v) }
        case .bool: if let v = node.bool { return .boolean(v) }
        case .array:
            if let items = node.array {
                return .array(try items.enumerated().map { i, item in try convert(item, path: path + ["[\(i)]"]) })
            }
        case .table: if let t = node.table { return .table(try convert(t, path: path)) }
        case .date, .time, .dateTime:
            throw TOMLError(line: nil, column: nil,
                            message: "\(name(path)): a TOML \(node.type) is not a configuration value (quote it to make it a string)")
        }
        throw TOMLError(line: nil, column: nil, message: "\(name(path)): unreadable \(node.type)")
    }

    /// `section.key` for error messages (array elements as `key.[i]`).
    private static func name(_ path: [String]) -> String {
        path.map { $0.contains(".") ? "\"\($0)\"" : $0 }.joined(separator: ".")
    }
}
