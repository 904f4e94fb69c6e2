import Testing
import TidemarkConfig

/// The TOML reader's arrays of tables (`[[a.b]]`), which `[[schema.fields]]` needs.
@Suite("TOML arrays of tables")
struct TOMLArrayTableTests {
    @Test("[[a.b]] appends a table per header; keys go into the newest one; a later [c] table ends it")
    func arrays() throws {
        let root = try TOML.parse("""
            [a]
            x = 1
            [[a.b]]
            name = "one"
            n.m = 2
            [[a.b]]
            name = "two"
            [c]
            y = true
            """)
        guard case .table(let a)? = root["a"], case .array(let items)? = a["b"] else { Issue.record("\(root)"); return }
        #expect(a["x"] == .integer(1))
        #expect(items == [.table(["name": .string("one"), "n": .table(["m": .integer(2)])]), .table(["name": .string("two")])])
        #expect(root["c"] == .table(["y": .boolean(true)]))
        #expect(throws: TOMLError.self) { try TOML.parse("[[a]]\nx = 1\n[[a]]\nx = 1\nx = 2\n") }
        #expect(throws: TOMLError.self) { try TOML.parse("a = 1\n[[a]]\n") }
        #expect(throws: TOMLError.self) { try TOML.parse("[[a]\n") }
    }
}
