import Foundation

/// An AWS access key pair, optionally with a session token. `description` and
/// `debugDescription` show only the access key id's first four characters, never the secret or
/// the token.
public struct AWSCredentials: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?
    /// Where the credentials came from (`explicit`, `environment`, `profile default in …`).
    public var source: String

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, source: String = "explicit") {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.source = source
    }

    public var description: String {
        "AWSCredentials(accessKeyID: \(accessKeyID.prefix(4))…, secret: <redacted>, "
            + "sessionToken: \(sessionToken == nil ? "none" : "<redacted>"), source: \(source))"
    }

    public var debugDescription: String { description }

    /// Reflection (`dump`, `String(reflecting:)`) shows the redacted form too.
    public var customMirror: Mirror { Mirror(self, children: ["redacted": description]) }
}

/// Resolves credentials in the order AWS tools use:
///
/// 1. explicit credentials in ``S3Configuration/credentials``;
/// 2. `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`);
/// 3. the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, default
///    `~/.aws/credentials`), profile ``S3Configuration/profile``, else `AWS_PROFILE`, else
///    `default`.
///
/// Not yet supported (planned): IMDSv2 instance credentials and web-identity
/// (`AWS_WEB_IDENTITY_TOKEN_FILE`) role assumption; both need refresh before expiry.
public enum CredentialChain {
    /// Resolves credentials once.
    /// - Parameters:
    ///   - explicit: credentials given in configuration; returned as-is when set.
    ///   - profile: the profile name to use in the shared file.
    ///   - environment: the process environment (injectable for tests).
    /// - Throws: ``ObjectStoreError`` (`accessDenied`) naming every source tried, never a secret.
    public static func resolve(explicit: AWSCredentials?, profile: String?,
                               environment: [String: String] = ProcessInfo.processInfo.environment)
        throws -> AWSCredentials
    {
        if let explicit { return explicit }
        if let id = environment["AWS_ACCESS_KEY_ID"], !id.isEmpty,
            let secret = environment["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty
        {
            let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
            return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: token, source: "environment")
        }
        let profileName = profile ?? environment["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        let path: String
        if let file = environment["AWS_SHARED_CREDENTIALS_FILE"], !file.isEmpty {
            path = (file as NSString).expandingTildeInPath
        } else {
            let home = environment["HOME"] ?? NSHomeDirectory()
            path = home + "/.aws/credentials"
        }
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            let sections = parseINI(text)
            if let section = sections[profileName], let id = section["aws_access_key_id"],
                let secret = section["aws_secret_access_key"]
            {
                return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: section["aws_session_token"],
                                      source: "profile \(profileName) in \(path)")
            }
        }
        throw ObjectStoreError(
            kind: .accessDenied, operation: "ResolveCredentials",
            message: "no AWS credentials: none configured, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY unset, "
                + "no profile '\(profileName)' with keys in \(path) (IMDSv2 and web identity are not supported yet)")
    }

    /// Parses the shared-credentials INI format: `[profile]` sections of `name = value` lines;
    /// `#` and `;` start comments. Names are lower-cased.
    static func parseINI(_ text: String) -> [String: [String: String]] {
        var result: [String: [String: String]] = [:]
        var current: String?
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                var name = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                if name.hasPrefix("profile ") { name = String(name.dropFirst(8)).trimmingCharacters(in: .whitespaces) }
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
