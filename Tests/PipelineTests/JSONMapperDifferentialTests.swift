import Foundation
@testable import Pipeline
import Testing
import TidemarkConfig

/// The JSON scanner against values known by construction: random objects are written as text
/// (random whitespace, escapes, surrogate pairs, nesting) while the expected value of every
/// path is recorded; random paths are mapped as string fields and must come back exactly.
@Suite("JSON mapper: differential")
struct JSONMapperDifferentialTests {
    /// A generated JSON text and, per path of object keys, what a string field reading it holds
    /// (nil for null).
    struct Generated {
        var text = ""
        var expected: [[String]: String?] = [:]
    }

    static func ws(_ rng: inout SplitMix64) -> String { ["", "", " ", "\n ", "\t"][Int(rng.next() % 5)] }

    /// A JSON string literal for `s` with a random mix of escapes.
    static func literal(_ s: String, _ rng: inout SplitMix64) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "/": out += rng.next() % 2 == 0 ? "\\/" : "/"
            default:
                if scalar.value < 0x20 || rng.next() % 6 == 0 {
                    for unit in String(scalar).utf16 { out += String(format: "\\u%04x", unit) }
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    static let alphabet: [String] = ["a", "b", "Z", "0", " ", "é", "😀", "\"", "\\", "\n", "/", "@", "\u{1}", "ü"]
    static func randomString(_ rng: inout SplitMix64, max: Int = 8) -> String {
        (0..<Int(rng.next() % UInt64(max + 1))).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }.joined()
    }

    static func value(_ rng: inout SplitMix64, path: [String], depth: Int, into g: inout Generated) -> String {
        let kind = path.isEmpty ? 6 : depth >= 3 ? rng.next() % 5 : rng.next() % 7
        switch kind {
        case 0:
            let s = randomString(&rng)
            g.expected[path] = s
            return literal(s, &rng)
        case 1:
            let text = ["0", "-1", "42", "9223372036854775807", "1.5", "-0.25e3", "1E-7", "123456789012345678901234"][Int(rng.next() % 8)]
            g.expected[path] = text
            return text
        case 2:
            let text = rng.next() % 2 == 0 ? "true" : "false"
            g.expected[path] = text
            return text
        case 3:
            g.expected[path] = .some(nil)
            return "null"
        case 4:
            let text = "[" + ws(&rng) + "1," + ws(&rng) + "\"x\"" + ws(&rng) + ",{}]"
            g.expected[path] = text
            return text
        default:
            var members: [String] = []
            var keys = Set<String>()
            for _ in 0..<Int(rng.next() % (path.isEmpty ? 7 : 4)) {
                let k = randomString(&rng, max: 4).replacingOccurrences(of: ".", with: "")
                guard keys.insert(k).inserted else { continue }
                let v = value(&rng, path: path + [k], depth: depth + 1, into: &g)
                members.append(ws(&rng) + literal(k, &rng) + ws(&rng) + ":" + ws(&rng) + v + ws(&rng))
            }
            let text = "{" + members.joined(separator: ",") + "}"
            if !path.isEmpty { g.expected[path] = text }
            return text
        }
    }

    @Test("2,000 random objects: every mapped path gives exactly its value; attributes is valid JSON without the mapped leaves")
    func differential() throws {
        var rng = SplitMix64(seed: 0xD1FF_E2E7)
        var checked = 0
        for _ in 0..<2000 {
            var g = Generated()
            var text = Self.value(&rng, path: [], depth: 0, into: &g)
            text = Self.ws(&rng) + text + Self.ws(&rng)
            g.text = text
            // Map 1-4 random paths as strings (a backslash in a key is escaped in the source). No
            // fields would be format = "json" without fields: the seed JSON, not a mapping.
            let paths = Array(g.expected.keys).shuffled(using: &rng).prefix(1 + Int(rng.next() % 4))
            guard !paths.isEmpty else { continue }
            let fields = paths.enumerated().map { i, path in
                SchemaField(name: "f\(i)", source: path.map { $0.replacingOccurrences(of: "\\", with: "\\\\") }.joined(separator: "."))
            }
            guard !fields.contains(where: { $0.source.isEmpty || $0.path.contains("") }) else { continue }
            let parser = try RecordParserTests.parser(.json, fields)
            let bytes = Array(text.utf8)
            try bytes.withUnsafeBytes { raw in
                let result = parser.parse(raw)
                guard case .success(let r) = result else {
                    Issue.record("rejected valid JSON: \(text): \(result)")
                    return
                }
                for (i, path) in paths.enumerated() {
                    // A path under a mapped parent still reads its own value.
                    let got = r.fieldValues[i].string(in: raw)
                    #expect(got == g.expected[path]!, "path \(path) in \(text)")
                    checked += 1
                }
                if let a = r.attributesJSON {
                    let obj = try #require(try JSONSerialization.jsonObject(with: Data(a.utf8)) as? [String: Any], "attributes \(a)")
                    for path in paths where path.count == 1 { #expect(obj[path[0]] == nil, "mapped \(path) also in attributes \(a)") }
                }
            }
        }
        #expect(checked > 1000)
    }
}
