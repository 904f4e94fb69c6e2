import Foundation

/// EC2 instance profile credentials over IMDSv2: `PUT /latest/api/token` (header
/// `X-aws-ec2-metadata-token-ttl-seconds`), then with `X-aws-ec2-metadata-token`
/// `GET /latest/meta-data/iam/security-credentials/` (the role name) and
/// `GET /latest/meta-data/iam/security-credentials/<role>` (JSON with `AccessKeyId`,
/// `SecretAccessKey`, `Token`, `Expiration`).
///
/// The endpoint is `AWS_EC2_METADATA_SERVICE_ENDPOINT` or `http://169.254.169.254`. Timeouts
/// are short (1 s to connect, 2 s per request) so a host that is not on EC2 fails fast.
public struct InstanceMetadataCredentialProvider: AWSCredentialProvider {
    public let endpoint: String
    public let providerDescription: String
    /// The session token's lifetime requested from IMDS, in seconds.
    public let tokenTTL: Int
    private let http: CredentialHTTP

    public init(environment: [String: String], tokenTTL: Int = 21600) {
        var endpoint = environment["AWS_EC2_METADATA_SERVICE_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 }
            ?? "http://169.254.169.254"
        while endpoint.hasSuffix("/") { endpoint.removeLast() }
        self.endpoint = endpoint
        self.tokenTTL = tokenTTL
        self.providerDescription = "EC2 instance metadata (\(endpoint))"
        self.http = CredentialHTTP(provider: providerDescription, connectTimeout: 1, timeout: 2)
    }

    /// Whether `AWS_EC2_METADATA_DISABLED` is `true` (any case).
    public static func isDisabled(_ environment: [String: String]) -> Bool {
        environment["AWS_EC2_METADATA_DISABLED"]?.lowercased() == "true"
    }

    public func fetchCredentials() throws -> AWSCredentials {
        let tokenResponse: HTTPResponse
        do {
            tokenResponse = try http.perform("PUT", endpoint + "/latest/api/token",
                                             headers: [("X-aws-ec2-metadata-token-ttl-seconds", "\(tokenTTL)")],
                                             body: [], what: "IMDSv2 token")
        } catch {
            // IMDS is the chain's last resort: unreachable almost always means "not on EC2",
            // which retrying cannot fix. (On EC2, a refresh that fails this way keeps the
            // still-valid credentials; see RefreshingCredentialProvider.)
            throw CredentialError(code: .fetchFailed, provider: providerDescription,
                                  message: "\(error.message); no other credentials are configured (not on EC2? set "
                                    + "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or "
                                    + "AWS_EC2_METADATA_DISABLED=true to skip IMDS)")
        }
        guard tokenResponse.status == 200 else {
            throw refused("PUT /latest/api/token", tokenResponse.status)
        }
        let token = String(decoding: tokenResponse.body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let headers = [("X-aws-ec2-metadata-token", token)]
        let base = endpoint + "/latest/meta-data/iam/security-credentials/"
        let roleResponse = try http.perform("GET", base, headers: headers, what: "IMDS role name")
        guard roleResponse.status == 200 else { throw refused("GET /latest/meta-data/iam/security-credentials/", roleResponse.status) }
        guard let role = String(decoding: roleResponse.body, as: UTF8.self).split(whereSeparator: \.isNewline).first
            .map({ $0.trimmingCharacters(in: .whitespaces) }), !role.isEmpty
        else {
            throw CredentialError(code: .fetchFailed, provider: providerDescription,
                                  message: "the instance has no IAM role (empty security-credentials listing)")
        }
        let path = SigV4Signer.uriEncode(role, encodeSlash: true)
        let credentialResponse = try http.perform("GET", base + path, headers: headers, what: "IMDS credentials")
        guard credentialResponse.status == 200 else {
            throw refused("GET /latest/meta-data/iam/security-credentials/\(role)", credentialResponse.status)
        }
        if let object = (try? JSONSerialization.jsonObject(with: Data(credentialResponse.body))) as? [String: Any],
            let code = object["Code"] as? String, code != "Success"
        {
            throw CredentialError(code: .fetchFailed, provider: providerDescription,
                                  message: "IMDS answered Code \(code) for role \(role)", isRetryable: true)
        }
        return try CredentialHTTP.parseJSONCredentials(credentialResponse.body, provider: providerDescription,
                                                       source: "\(providerDescription) role \(role)", code: .fetchFailed)
    }

    private func refused(_ what: String, _ status: Int) -> CredentialError {
        CredentialError(code: .fetchFailed, provider: providerDescription, message: "\(what) answered HTTP \(status)",
                        isRetryable: status >= 500 || status == 429)
    }
}
