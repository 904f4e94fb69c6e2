import Foundation

extension EngineConfig {
    /// Resolves the references in configuration strings, at load time:
    ///
    /// - `${NAME}`: the value of the environment variable NAME (`[A-Za-z_][A-Za-z0-9_]*`); set
    ///   but empty is the empty string, unset is an error.
    /// - `${file:PATH}`: the content of the file PATH (relative paths are relative to the working
    ///   directory) without one trailing newline (`\n` or `\r\n`); it must be UTF-8 text of at
    ///   most ``maxFileBytes``.
    /// - `$${`: a literal `${`. A `$` not followed by `{` is itself.
    ///
    /// Resolved text is inserted as it is, never scanned again. Errors are ``ConfigError``s that
    /// name the key and the reference (``ConfigError/reference``), never a resolved value.
    public struct References: Sendable {
        /// Where `${NAME}` looks NAME up.
        public var environment: [String: String]
        /// The largest file `${file:...}` reads (1 MiB): a secret, not a data file.
        public static let maxFileBytes = 1 << 20

        /// References resolved from `environment`.
        public init(environment: [String: String]) {
            self.environment = environment
        }

        /// `text` with its references replaced, and whether it held any. `key` (`section.key`)
        /// names the value in errors.
        public func resolve(_ text: String, key: String) throws -> (value: String, hadReference: Bool) {
            guard text.utf8.contains(UInt8(ascii: "$")) else { return (text, false) }
            let b = Array(text.utf8)
            let dollar = UInt8(ascii: "$"), open = UInt8(ascii: "{"), close = UInt8(ascii: "}")
            var out: [UInt8] = []
            out.reserveCapacity(b.count)
            var had = false
            var i = 0
            while i < b.count {
                if b[i] == dollar, i + 2 < b.count, b[i + 1] == dollar, b[i + 2] == open {
                    out += [dollar, open]
                    i += 3
                } else if b[i] == dollar, i + 1 < b.count, b[i + 1] == open {
                    guard let end = b[(i + 2)...].firstIndex(of: close) else {
                        throw ConfigError(key: key, message: "'${' at byte \(i + 1) has no closing '}' "
                            + "(a reference is ${NAME} or ${file:/path}; write $${ for a literal ${)")
                    }
                    out += Array(try value(of: String(decoding: b[(i + 2)..<end], as: UTF8.self), at: i + 1, key: key).utf8)
                    had = true
                    i = end + 1
                } else {
                    out.append(b[i])
                    i += 1
                }
            }
            return (String(decoding: out, as: UTF8.self), had)
        }

        /// Resolves every string in a TOML tree (tables and arrays included); `referenced`
        /// collects the dotted keys (`sink.secret_access_key`, `kafka.properties.sasl.password`)
        /// whose value held a reference.
        func resolve(_ root: [String: TOMLValue], referenced: inout Set<String>) throws -> [String: TOMLValue] {
            func walk(_ v: TOMLValue, _ key: String) throws -> TOMLValue {
                switch v {
                case .string(let text):
                    let (value, had) = try resolve(text, key: key)
                    if had { referenced.insert(key) }
                    return .string(value)
                case .array(let items): return .array(try items.map { try walk($0, key) })
                case .table(let t): return .table(try t.reduce(into: [:]) { $0[$1.key] = try walk($1.value, key + "." + $1.key) })
                case .integer, .float, .boolean: return v
                }
            }
            return try root.reduce(into: [:]) { $0[$1.key] = try walk($1.value, $1.key) }
        }

        /// The text one reference (`inner` is what stands between `${` and `}`) stands for.
        func value(of inner: String, at byte: Int, key: String) throws -> String {
            if inner.hasPrefix("file:") {
                let path = String(inner.dropFirst(5))
                let reference = "${file:\(path)}"
                guard !path.isEmpty else {
                    throw ConfigError(key: key, message: "${file:} names no file (e.g. ${file:/run/secrets/name})", reference: reference)
                }
                return try Self.readFile(path, reference: reference, key: key)
            }
            // An invalid name is not echoed: the text may be a literal secret that happens to
            // hold `${` (escape it as `$${`).
            guard let first = inner.utf8.first, first == UInt8(ascii: "_") || Self.isLetter(first),
                  inner.utf8.allSatisfy({ $0 == UInt8(ascii: "_") || Self.isLetter($0) || (0x30...0x39).contains($0) }) else {
                throw ConfigError(key: key, message: "'${' at byte \(byte) does not start a reference: write ${NAME} "
                    + "(an environment variable), ${file:/path}, or $${ for a literal ${")
            }
            guard let v = environment[inner] else {
                throw ConfigError(key: key, message: "references ${\(inner)}, but the environment variable \(inner) is not set",
                                  reference: "${\(inner)}")
            }
            return v
        }

        static func isLetter(_ c: UInt8) -> Bool { (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c) }

        static func readFile(_ path: String, reference: String, key: String) throws -> String {
            func fail(_ why: String) -> ConfigError {
                ConfigError(key: key, message: "cannot read \(reference): \(why)", reference: reference)
            }
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw fail(String(cString: strerror(errno))) }
            defer { close(fd) }
            var data: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 64 << 10)
            while true {
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw fail(String(cString: strerror(errno)))
                }
                if n == 0 { break }
                data += chunk[0..<n]
                if data.count > maxFileBytes { throw fail("larger than \(maxFileBytes >> 20) MiB (a secret file is expected)") }
            }
            if data.last == 0x0A {
                data.removeLast()
                if data.last == 0x0D { data.removeLast() }
            }
            let text = String(decoding: data, as: UTF8.self)
            guard text.utf8.elementsEqual(data) else { throw fail("not UTF-8 text") }
            return text
        }
    }
}
