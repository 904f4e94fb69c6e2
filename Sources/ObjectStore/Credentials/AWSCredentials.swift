import Foundation

/// An AWS access key pair, optionally with a session token and an expiry. `description` and
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
    /// When temporary credentials stop working; nil for long-term keys.
    public var expiration: Date?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, source: String = "explicit",
                expiration: Date? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.source = source
        self.expiration = expiration
    }

    public var description: String {
        "AWSCredentials(accessKeyID: \(accessKeyID.prefix(4))…, secret: <redacted>, "
            + "sessionToken: \(sessionToken == nil ? "none" : "<redacted>"), source: \(source)"
            + (expiration.map { ", expires: \($0)" } ?? "") + ")"
    }

    public var debugDescription: String { description }

    /// Reflection (`dump`, `String(reflecting:)`) shows the redacted form too.
    public var customMirror: Mirror { Mirror(self, children: ["redacted": description]) }
}

/// Why credentials could not be obtained. Never carries a secret, a token or a credential
/// process's standard output.
public struct CredentialError: Error, CustomStringConvertible, Sendable {
    /// What went wrong.
    public enum Code: String, Sendable, Equatable {
        /// No provider in the chain is configured (nothing to try).
        case notFound
        /// A provider is configured but its settings are unusable (missing file, bad profile,
        /// unsupported setting, refused endpoint).
        case invalidConfiguration
        /// The provider's service (STS, ECS, IMDS) refused or answered something unusable.
        case fetchFailed
        /// `credential_process` failed (non-zero exit, timeout, bad JSON).
        case processFailed
        /// The cached credentials expired and could not be refreshed.
        case expired
    }

    /// What went wrong.
    public var code: Code
    /// The provider, as ``AWSCredentialProvider/providerDescription`` names it.
    public var provider: String
    /// Human-readable detail.
    public var message: String
    /// Whether trying again may help (the service was unreachable or timed out).
    public var isRetryable: Bool

    public init(code: Code, provider: String, message: String, isRetryable: Bool = false) {
        self.code = code
        self.provider = provider
        self.message = message
        self.isRetryable = isRetryable
    }

    public var description: String { "credentials from \(provider): \(code.rawValue): \(message)" }
}

/// Supplies AWS credentials. Implementations fetch fresh credentials on every call (reading
/// files, running a process or calling a service); ``RefreshingCredentialProvider`` caches
/// them until shortly before they expire.
public protocol AWSCredentialProvider: Sendable {
    /// Names the provider for logs and `etl-engine --check`, e.g. `environment` or
    /// `web identity (role arn:aws:iam::1:role/x)`. Never contains a secret.
    var providerDescription: String { get }
    /// Fetches credentials now.
    /// - Throws: ``CredentialError``.
    func fetchCredentials() throws -> AWSCredentials
}

/// Fixed credentials (explicit configuration, environment variables, static profile keys).
public struct StaticCredentialProvider: AWSCredentialProvider {
    public let credentials: AWSCredentials
    public let providerDescription: String

    public init(_ credentials: AWSCredentials, description: String? = nil) {
        self.credentials = credentials
        self.providerDescription = description ?? credentials.source
    }

    public func fetchCredentials() throws -> AWSCredentials { credentials }
}
