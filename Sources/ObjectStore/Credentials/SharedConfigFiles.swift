import Foundation

/// The AWS shared config and credentials files ("Shared config and credentials files", AWS SDKs
/// and Tools Reference Guide):
///
/// - `AWS_CONFIG_FILE` (default `~/.aws/config`): `[default]` and `[profile NAME]` sections;
/// - `AWS_SHARED_CREDENTIALS_FILE` (default `~/.aws/credentials`): `[NAME]` sections.
///
/// A setting in the credentials file wins over the same setting in the config file.
public struct SharedConfigFiles: Sendable {
    public let configPath: String
    public let credentialsPath: String
    /// Profile name -> lower-cased setting name -> value.
    public let profiles: [String: [String: String]]

    /// Reads both files; a missing file counts as empty.
    public init(environment: [String: String]) {
        let home = environment["HOME"] ?? NSHomeDirectory()
        func path(_ variable: String, _ fallback: String) -> String {
            if let file = environment[variable], !file.isEmpty {
                return file.hasPrefix("~/") ? home + file.dropFirst() : file
            }
            return home + fallback
        }
        configPath = path("AWS_CONFIG_FILE", "/.aws/config")
        credentialsPath = path("AWS_SHARED_CREDENTIALS_FILE", "/.aws/credentials")
        var merged: [String: [String: String]] = [:]
        if let text = try? String(contentsOfFile: configPath, encoding: .utf8) {
            for (section, values) in Self.parseINI(text) {
                let name: String
                if section == "default" {
                    name = "default"
                } else if section.hasPrefix("profile ") {
                    name = String(section.dropFirst(8)).trimmingCharacters(in: .whitespaces)
                } else {
                    continue  // [sso-session x], [services x], or a bare name the CLI ignores
                }
                merged[name, default: [:]].merge(values) { _, new in new }
            }
        }
        if let text = try? String(contentsOfFile: credentialsPath, encoding: .utf8) {
            for (section, values) in Self.parseINI(text) {
                merged[section, default: [:]].merge(values) { _, new in new }
            }
        }
        profiles = merged
    }

    /// The profile to use: `explicit`, else `AWS_PROFILE`, else `default`.
    public static func profileName(explicit: String?, environment: [String: String]) -> String {
        explicit.flatMap { $0.isEmpty ? nil : $0 } ?? environment["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 }
            ?? "default"
    }

    /// Parses the INI format: `[section]` headers (names kept as written, trimmed) of
    /// `name = value` lines; `#` and `;` start comment lines. Setting names are lower-cased.
    static func parseINI(_ text: String) -> [String: [String: String]] {
        var result: [String: [String: String]] = [:]
        var current: String?
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                let name = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                current = name
                result[name, default: [:]] = result[name] ?? [:]
                continue
            }
            guard let section = current, let eq = line.firstIndex(of: "=") else { continue }
            let name = line[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            result[section, default: [:]][name] = value
        }
        return result
    }
}
