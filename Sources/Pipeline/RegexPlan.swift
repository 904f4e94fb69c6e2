import Foundation
import TidemarkConfig

/// A compiled pattern. @unchecked Sendable: NSRegularExpression is immutable and documented
/// thread-safe.
final class CompiledRegex: @unchecked Sendable {
    let regex: NSRegularExpression
    init(_ pattern: String) throws { regex = try NSRegularExpression(pattern: pattern, options: []) }
}

/// `format = "regex"`: a compiled pattern, its named groups, and the group each field reads.
struct RegexPlan: Sendable {
    let compiled: CompiledRegex
    var regex: NSRegularExpression { compiled.regex }
    let groupNames: [String]
    /// The group each field reads, in field order.
    var sourceNames: [String] = []

    /// ICU (NSRegularExpression) allows only letters and digits in group names; nginx's
    /// variables have underscores. Groups are renamed `tmg0`, `tmg1`, ... in the compiled pattern.
    init(pattern: String) throws {
        let (rewritten, names) = Self.namedGroups(pattern)
        compiled = try CompiledRegex(rewritten)
        groupNames = names
    }

    /// The group name the compiled pattern uses for configured group `name`.
    func internalName(_ name: String) -> String { "tmg\(groupNames.firstIndex(of: name) ?? 0)" }

    /// The names of `(?<name>...)` groups, in pattern order (escaped characters and character
    /// classes skipped), and the pattern with them (and back references `\k<name>`) renamed `tmg<index>`.
    static func namedGroups(_ pattern: String) -> (pattern: String, names: [String]) {
        let b = Array(pattern.utf8)
        var out: [UInt8] = []
        var names: [String] = []
        var i = 0
        var inClass = false
        while i < b.count {
            if b[i] == UInt8(ascii: "\\"), i + 2 < b.count, b[i + 1] == UInt8(ascii: "k"), b[i + 2] == UInt8(ascii: "<"),
               let close = b[(i + 3)...].firstIndex(of: UInt8(ascii: ">")),
               let index = names.firstIndex(of: String(decoding: b[(i + 3)..<close], as: UTF8.self)) {
                // A back reference \k<name> to a renamed group.
                out += Array("\\k<tmg\(index)>".utf8)
                i = close + 1
                continue
            }
            if b[i] == UInt8(ascii: "\\") {
                out.append(b[i])
                if i + 1 < b.count { out.append(b[i + 1]) }
                i += 2
                continue
            }
            if inClass {
                if b[i] == UInt8(ascii: "]") { inClass = false }
            } else if b[i] == UInt8(ascii: "[") {
                inClass = true
            } else if b[i] == UInt8(ascii: "("), i + 3 < b.count, b[i + 1] == UInt8(ascii: "?"), b[i + 2] == UInt8(ascii: "<"),
                      b[i + 3] != UInt8(ascii: "="), b[i + 3] != UInt8(ascii: "!") {
                var j = i + 3
                while j < b.count, b[j] != UInt8(ascii: ">") { j += 1 }
                names.append(String(decoding: b[(i + 3)..<j], as: UTF8.self))
                out += Array("(?<tmg\(names.count - 1)".utf8)
                i = j
                continue
            }
            out.append(b[i])
            i += 1
        }
        return (String(decoding: out, as: UTF8.self), names)
    }

    /// Matches `line` (valid UTF-8) and converts each field's group. A group that did not take
    /// part is missing; for a non-string field, an empty group or `-` (nginx's "none") is missing too.
    func match(_ line: UnsafeRawBufferPointer, fields: [FieldPlan], into values: inout [FieldValue]) -> Result<Void, RejectReason> {
        let s = String(decoding: line, as: UTF8.self)
        guard let m = regex.firstMatch(in: s, options: [], range: NSRange(location: 0, length: s.utf16.count)) else {
            return .failure(RejectReason("line does not match input.pattern"))
        }
        for (k, f) in fields.enumerated() {
            let r = m.range(withName: sourceNames[k])
            guard r.location != NSNotFound, let range = Range(r, in: s) else { continue }
            let lo = s.utf8.distance(from: s.startIndex, to: range.lowerBound)
            let hi = s.utf8.distance(from: s.startIndex, to: range.upperBound)
            let text = UnsafeRawBufferPointer(rebasing: line[lo..<hi])
            if f.type != .string && (text.isEmpty || (text.count == 1 && text[0] == UInt8(ascii: "-"))) { continue }
            switch f.convert(text: text, range: lo..<hi) {
            case .success(let v): values[k] = v
            case .failure(let e): return .failure(e)
            }
        }
        return .success(())
    }
}
