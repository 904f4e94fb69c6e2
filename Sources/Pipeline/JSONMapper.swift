import TidemarkConfig

#if canImport(Glibc)
import Glibc
#endif

/// The configured JSON paths as a trie: one node per key prefix; a node may end a field's path.
struct JSONPlan: Sendable {
    struct Child: Sendable { var key: [UInt8]; var node: Int }
    struct Node: Sendable { var children: [Child] = []; var field: Int? }
    var nodes: [Node] = [Node()]
    var collectUnmapped: Bool

    init(paths: [[String]], collectUnmapped: Bool) {
        self.collectUnmapped = collectUnmapped
        for (field, path) in paths.enumerated() {
            var node = 0
            for key in path {
                let bytes = Array(key.utf8)
                if let c = nodes[node].children.first(where: { $0.key == bytes }) {
                    node = c.node
                } else {
                    nodes.append(Node())
                    nodes[node].children.append(Child(key: bytes, node: nodes.count - 1))
                    node = nodes.count - 1
                }
            }
            if nodes[node].field == nil { nodes[node].field = field }
        }
    }
}

/// A hand-written JSON scanner that walks one object, extracts the configured paths, and
/// copies unmapped members' raw JSON text into the attributes object. It validates the whole
/// text (RFC 8259 grammar; the input was checked to be UTF-8 before), allocates nothing for
/// values without escapes, and never traps: nesting deeper than ``maxDepth`` is rejected.
struct JSONMapper {
    static let maxDepth = 64
    let p: UnsafeRawBufferPointer
    let n: Int
    var i = 0
    let plan: JSONPlan
    let fields: [FieldPlan]
    var values: [FieldValue]
    /// `{` + the members copied so far; empty (no allocation) until the first unmapped member.
    var attributes: [UInt8] = []

    /// Starts a member in `attributes`: the object's `{` for the first one, else a `,` after
    /// the `written` members before it at this level.
    @inline(__always) mutating func beginMember(_ written: Int) {
        if attributes.isEmpty {
            attributes.reserveCapacity(n + 2)
            attributes.append(UInt8(ascii: "{"))
        } else if written > 0 {
            attributes.append(UInt8(ascii: ","))
        }
    }

    init(_ p: UnsafeRawBufferPointer, plan: JSONPlan, fields: [FieldPlan]) {
        self.p = p
        self.n = p.count
        self.plan = plan
        self.fields = fields
        self.values = [FieldValue](repeating: .null, count: fields.count)
    }

    /// What a scanned value was.
    enum Scanned {
        case string(Range<Int>, escaped: Bool)
        case number(Range<Int>)
        case bool(Bool)
        case null
        case object(Range<Int>)
        case array(Range<Int>)
    }

    static func fail(_ why: String, at: Int) -> RejectReason { RejectReason("invalid JSON: \(why) at byte \(at)") }

    @inline(__always) mutating func skipWhitespace() {
        while i < n {
            let c = p[i]
            guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { return }
            i += 1
        }
    }

    /// Maps the whole input. On success `values` holds what was found and `attributes` the
    /// unmapped members (`{...}`, or empty when there were none).
    mutating func run() throws(RejectReason) {
        skipWhitespace()
        guard i < n, p[i] == UInt8(ascii: "{") else { throw RejectReason("JSON value is not an object") }
        let written = try object(node: 0, depth: 1, collect: plan.collectUnmapped)
        if written > 0 { attributes.append(UInt8(ascii: "}")) }
        skipWhitespace()
        guard i == n else { throw Self.fail("trailing characters", at: i) }
    }

    /// Walks the object at `i` (at its `{`) under trie `node`; returns the members it copied into
    /// `attributes` (when `collect`).
    mutating func object(node: Int, depth: Int, collect: Bool) throws(RejectReason) -> Int {
        guard depth <= Self.maxDepth else { throw RejectReason("JSON nested deeper than \(Self.maxDepth) levels") }
        i += 1
        skipWhitespace()
        if i < n && p[i] == UInt8(ascii: "}") { i += 1; return 0 }
        var written = 0
        while true {
            skipWhitespace()
            guard i < n, p[i] == UInt8(ascii: "\"") else { throw Self.fail("expected a member name", at: i) }
            let keyStart = i
            let (key, escaped) = try string()
            let keyEnd = i
            skipWhitespace()
            guard i < n, p[i] == UInt8(ascii: ":") else { throw Self.fail("expected ':'", at: i) }
            i += 1
            skipWhitespace()
            let valueStart = i
            let child = lookup(node, key: key, escaped: escaped)
            if let child, let f = plan.nodes[child].field {
                // A mapped path: the whole value goes to the field (nested fields under it too).
                let v: Scanned
                if !plan.nodes[child].children.isEmpty && i < n && p[i] == UInt8(ascii: "{") {
                    _ = try object(node: child, depth: depth + 1, collect: false)
                    v = .object(valueStart..<i)
                } else {
                    v = try value(depth: depth + 1)
                }
                if case .null = values[f] { values[f] = try convert(v, fields[f]) }
            } else if let child, i < n, p[i] == UInt8(ascii: "{") {
                // On the way to mapped paths: descend; the rest of the object stays in attributes.
                let mark = attributes.count
                if collect {
                    beginMember(written)
                    attributes.append(contentsOf: UnsafeRawBufferPointer(rebasing: p[keyStart..<keyEnd]))
                    attributes.append(UInt8(ascii: ":"))
                    attributes.append(UInt8(ascii: "{"))
                }
                let inner = try object(node: child, depth: depth + 1, collect: collect)
                if collect {
                    if inner > 0 { attributes.append(UInt8(ascii: "}")); written += 1 } else { attributes.removeSubrange(mark...) }
                }
            } else {
                _ = try value(depth: depth + 1)
                if collect {
                    beginMember(written)
                    attributes.append(contentsOf: UnsafeRawBufferPointer(rebasing: p[keyStart..<keyEnd]))
                    attributes.append(UInt8(ascii: ":"))
                    attributes.append(contentsOf: UnsafeRawBufferPointer(rebasing: p[valueStart..<i]))
                    written += 1
                }
            }
            skipWhitespace()
            guard i < n else { throw Self.fail("unterminated object", at: i) }
            if p[i] == UInt8(ascii: ",") { i += 1; continue }
            if p[i] == UInt8(ascii: "}") { i += 1; return written }
            throw Self.fail("expected ',' or '}'", at: i)
        }
    }

    @inline(__always) func lookup(_ node: Int, key: Range<Int>, escaped: Bool) -> Int? {
        let children = plan.nodes[node].children
        if children.isEmpty { return nil }
        if escaped {
            guard let decoded = try? decode(key) else { return nil }
            return children.first(where: { $0.key == decoded })?.node
        }
        let count = key.count
        for c in children where c.key.count == count {
            let same = c.key.withUnsafeBytes { k in
                memcmp(k.baseAddress!, p.baseAddress! + key.lowerBound, count) == 0
            }
            if same { return c.node }
        }
        return nil
    }

    /// Scans any value at `i` (validating it) and says what it was.
    mutating func value(depth: Int) throws(RejectReason) -> Scanned {
        guard i < n else { throw Self.fail("expected a value", at: i) }
        let start = i
        switch p[i] {
        case UInt8(ascii: "\""):
            let (r, escaped) = try string()
            return .string(r, escaped: escaped)
        case UInt8(ascii: "{"):
            guard depth <= Self.maxDepth else { throw RejectReason("JSON nested deeper than \(Self.maxDepth) levels") }
            i += 1
            skipWhitespace()
            if i < n && p[i] == UInt8(ascii: "}") { i += 1; return .object(start..<i) }
            while true {
                skipWhitespace()
                guard i < n, p[i] == UInt8(ascii: "\"") else { throw Self.fail("expected a member name", at: i) }
                _ = try string()
                skipWhitespace()
                guard i < n, p[i] == UInt8(ascii: ":") else { throw Self.fail("expected ':'", at: i) }
                i += 1
                skipWhitespace()
                _ = try value(depth: depth + 1)
                skipWhitespace()
                guard i < n else { throw Self.fail("unterminated object", at: i) }
                if p[i] == UInt8(ascii: ",") { i += 1; continue }
                if p[i] == UInt8(ascii: "}") { i += 1; return .object(start..<i) }
                throw Self.fail("expected ',' or '}'", at: i)
            }
        case UInt8(ascii: "["):
            guard depth <= Self.maxDepth else { throw RejectReason("JSON nested deeper than \(Self.maxDepth) levels") }
            i += 1
            skipWhitespace()
            if i < n && p[i] == UInt8(ascii: "]") { i += 1; return .array(start..<i) }
            while true {
                skipWhitespace()
                _ = try value(depth: depth + 1)
                skipWhitespace()
                guard i < n else { throw Self.fail("unterminated array", at: i) }
                if p[i] == UInt8(ascii: ",") { i += 1; continue }
                if p[i] == UInt8(ascii: "]") { i += 1; return .array(start..<i) }
                throw Self.fail("expected ',' or ']'", at: i)
            }
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), 0x30...0x39:
            try number()
            return .number(start..<i)
        default:
            throw Self.fail("unexpected character", at: i)
        }
    }

    mutating func literal(_ word: StaticString) throws(RejectReason) {
        let count = word.utf8CodeUnitCount
        guard i + count <= n, memcmp(p.baseAddress! + i, word.utf8Start, count) == 0 else {
            throw Self.fail("unexpected character", at: i)
        }
        i += count
    }

    /// RFC 8259 number grammar.
    mutating func number() throws(RejectReason) {
        let start = i
        if p[i] == UInt8(ascii: "-") { i += 1 }
        guard i < n, p[i] >= 0x30, p[i] <= 0x39 else { throw Self.fail("bad number", at: start) }
        if p[i] == 0x30 { i += 1 } else { while i < n, p[i] >= 0x30, p[i] <= 0x39 { i += 1 } }
        if i < n, p[i] == UInt8(ascii: ".") {
            i += 1
            let f = i
            while i < n, p[i] >= 0x30, p[i] <= 0x39 { i += 1 }
            guard i > f else { throw Self.fail("bad number", at: start) }
        }
        if i < n, p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E") {
            i += 1
            if i < n, p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-") { i += 1 }
            let e = i
            while i < n, p[i] >= 0x30, p[i] <= 0x39 { i += 1 }
            guard i > e else { throw Self.fail("bad number", at: start) }
        }
    }

    /// Scans the string at `i` (at its opening quote); returns its content's range and whether
    /// it holds escapes. Control characters are invalid; escapes are checked here.
    mutating func string() throws(RejectReason) -> (Range<Int>, Bool) {
        let start = i
        i += 1
        let contentStart = i
        var escaped = false
        while i < n {
            let c = p[i]
            if c == UInt8(ascii: "\"") {
                i += 1
                return (contentStart..<(i - 1), escaped)
            }
            if c == UInt8(ascii: "\\") {
                escaped = true
                guard i + 1 < n else { break }
                switch p[i + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                     UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    i += 2
                case UInt8(ascii: "u"):
                    guard i + 6 <= n, Self.hex4(p, i + 2) != nil else { throw Self.fail("bad \\u escape", at: i) }
                    i += 6
                default: throw Self.fail("bad escape", at: i)
                }
                continue
            }
            if c < 0x20 { throw Self.fail("control character in string", at: i) }
            i += 1
        }
        throw Self.fail("unterminated string", at: start)
    }

    static func hex4(_ p: UnsafeRawBufferPointer, _ at: Int) -> UInt32? {
        var v: UInt32 = 0
        for k in at..<(at + 4) {
            let c = p[k]
            let d: UInt8
            switch c {
            case 0x30...0x39: d = c - 0x30
            case 0x41...0x46: d = c - 0x41 + 10
            case 0x61...0x66: d = c - 0x61 + 10
            default: return nil
            }
            v = v << 4 | UInt32(d)
        }
        return v
    }

    /// The bytes of a string's content with its escapes decoded (the scan validated them).
    /// A lone surrogate is an error.
    func decode(_ r: Range<Int>) throws(RejectReason) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(r.count)
        var k = r.lowerBound
        while k < r.upperBound {
            let c = p[k]
            guard c == UInt8(ascii: "\\") else { out.append(c); k += 1; continue }
            let e = p[k + 1]
            k += 2
            switch e {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = Self.hex4(p, k) ?? 0xFFFD
                k += 4
                if scalar >= 0xD800 && scalar <= 0xDBFF {
                    guard k + 6 <= r.upperBound, p[k] == UInt8(ascii: "\\"), p[k + 1] == UInt8(ascii: "u"),
                          let low = Self.hex4(p, k + 2), low >= 0xDC00, low <= 0xDFFF else {
                        throw Self.fail("unpaired surrogate in \\u escape", at: k - 6)
                    }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    k += 6
                } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                    throw Self.fail("unpaired surrogate in \\u escape", at: k - 6)
                }
                guard let u = Unicode.Scalar(scalar) else { throw Self.fail("bad \\u escape", at: k - 6) }
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default: out.append(e)    // \" \\ \/
            }
        }
        return out
    }

    /// A scanned value converted to a field's type, or the reject reason naming the field.
    func convert(_ v: Scanned, _ f: FieldPlan) throws(RejectReason) -> FieldValue {
        switch v {
        case .null: return .null
        case .string(let r, let escaped):
            if escaped {
                let bytes = try decode(r)
                return try bytes.withUnsafeBytes { f.convert(text: $0, range: nil) }.get()
            }
            return try f.convert(text: UnsafeRawBufferPointer(rebasing: p[r]), range: r).get()
        case .number(let r):
            switch f.type {
            case .string: return .slice(r)
            case .int64, .double:
                return try f.convert(text: UnsafeRawBufferPointer(rebasing: p[r]), range: r, what: "number").get()
            case .timestamp:
                guard f.timestampFormat.epochScale != nil else { throw f.mismatch("number") }
                guard let n = NumberText.parse(UnsafeRawBufferPointer(rebasing: p[r])), let m = f.timestampFormat.epochMicros(n) else {
                    throw f.mismatch("number out of range")
                }
                return .timestamp(m)
            case .bool: throw f.mismatch("number")
            }
        case .bool(let b):
            switch f.type {
            case .bool: return .bool(b)
            case .string: return .text(b ? "true" : "false")
            default: throw f.mismatch("boolean")
            }
        case .object(let r), .array(let r):
            guard f.type == .string else {
                if case .object = v { throw f.mismatch("object") }
                throw f.mismatch("array")
            }
            return .slice(r)
        }
    }
}
