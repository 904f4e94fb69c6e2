import Foundation

/// STS `AssumeRoleWithWebIdentity` with a token file (EKS IRSA, GitHub OIDC, …): from
/// `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (+ `AWS_ROLE_SESSION_NAME`), or a profile's
/// `web_identity_token_file` + `role_arn`. The token file is read again on every fetch (the
/// platform rotates it).
public struct WebIdentityCredentialProvider: AWSCredentialProvider {
    public let tokenFile: String
    public let roleARN: String
    public let sessionName: String
    public let providerDescription: String
    private let sts: STSClient

    /// - Parameters:
    ///   - tokenFile: the web identity token file.
    ///   - roleARN: the role to assume.
    ///   - sessionName: `RoleSessionName`; nil: `tidemark-<unix time>`.
    ///   - region: the STS region (`https://sts.<region>.amazonaws.com`).
    ///   - environment: for `AWS_ENDPOINT_URL_STS`.
    ///   - description: overrides ``providerDescription`` (profiles name themselves).
    public init(tokenFile: String, roleARN: String, sessionName: String?, region: String,
                environment: [String: String], caBundle: String? = nil, description: String? = nil) {
        self.tokenFile = tokenFile
        self.roleARN = roleARN
        self.sessionName = sessionName.flatMap { $0.isEmpty ? nil : $0 } ?? "tidemark-\(Int(Date().timeIntervalSince1970))"
        let name = description ?? "web identity (role \(roleARN))"
        self.providerDescription = name
        self.sts = STSClient(region: region, environment: environment, provider: name, caBundle: caBundle)
    }

    /// From `AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN`; nil when either is unset.
    public init?(environment: [String: String], region: String, caBundle: String? = nil) {
        guard let file = environment["AWS_WEB_IDENTITY_TOKEN_FILE"], !file.isEmpty,
            let role = environment["AWS_ROLE_ARN"], !role.isEmpty
        else { return nil }
        self.init(tokenFile: file, roleARN: role, sessionName: environment["AWS_ROLE_SESSION_NAME"], region: region,
                  environment: environment, caBundle: caBundle)
    }

    public func fetchCredentials() throws -> AWSCredentials {
        let token: String
        do {
            token = try String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            throw CredentialError(code: .invalidConfiguration, provider: providerDescription,
                                  message: "cannot read the web identity token file \(tokenFile)")
        }
        guard !token.isEmpty else {
            throw CredentialError(code: .invalidConfiguration, provider: providerDescription,
                                  message: "the web identity token file \(tokenFile) is empty")
        }
        return try sts.assumeRoleWithWebIdentity(roleARN: roleARN, sessionName: sessionName, token: token,
                                                 durationSeconds: nil)
    }
}

/// STS `AssumeRole` signed with another provider's credentials (a profile's `role_arn` +
/// `source_profile`), with the profile's `role_session_name`, `external_id` and
/// `duration_seconds`.
public struct AssumeRoleCredentialProvider: AWSCredentialProvider {
    public let roleARN: String
    public let sessionName: String
    public let externalID: String?
    public let durationSeconds: Int?
    public let providerDescription: String
    /// The credentials that sign the AssumeRole call (cached: they may be temporary too).
    public let source: RefreshingCredentialProvider
    private let sts: STSClient

    public init(roleARN: String, sessionName: String?, externalID: String?, durationSeconds: Int?,
                source: any AWSCredentialProvider, region: String, environment: [String: String],
                caBundle: String? = nil, description: String) {
        self.roleARN = roleARN
        self.sessionName = sessionName.flatMap { $0.isEmpty ? nil : $0 } ?? "tidemark-\(Int(Date().timeIntervalSince1970))"
        self.externalID = externalID
        self.durationSeconds = durationSeconds
        self.providerDescription = description
        self.source = source as? RefreshingCredentialProvider ?? RefreshingCredentialProvider(provider: source)
        self.sts = STSClient(region: region, environment: environment, provider: description, caBundle: caBundle)
    }

    public func fetchCredentials() throws -> AWSCredentials {
        let signing = try source.credentials()
        return try sts.assumeRole(roleARN: roleARN, sessionName: sessionName, externalID: externalID,
                                  durationSeconds: durationSeconds, credentials: signing)
    }
}
