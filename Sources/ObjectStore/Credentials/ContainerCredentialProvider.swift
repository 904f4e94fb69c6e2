import Foundation

/// ECS / EKS Pod Identity container credentials: `GET http://169.254.170.2` +
/// `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`, or `AWS_CONTAINER_CREDENTIALS_FULL_URI` (over
/// http only to a loopback address or the ECS/EKS link-local hosts), with the `Authorization`
/// header read from `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` (re-read on every fetch) or
/// `AWS_CONTAINER_AUTHORIZATION_TOKEN`. The JSON response carries `AccessKeyId`,
/// `SecretAccessKey`, `Token` and `Expiration`.
public struct ContainerCredentialProvider: AWSCredentialProvider {
    public let url: String
    public let providerDescription: String
    private let tokenFile: String?
    private let token: String?
    private let http: CredentialHTTP

    /// Nil when neither `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` nor
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI` is set.
    /// - Throws: ``CredentialError`` (`invalidConfiguration`) for a full URI the SDKs refuse.
    public init?(environment: [String: String]) throws {
        let url: String
        if let relative = environment["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"], !relative.isEmpty {
            url = "http://169.254.170.2" + (relative.hasPrefix("/") ? relative : "/" + relative)
        } else if let full = environment["AWS_CONTAINER_CREDENTIALS_FULL_URI"], !full.isEmpty {
            url = full
            guard let components = URLComponents(string: full), let host = components.host?.lowercased(),
                let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https"
            else {
                throw CredentialError(code: .invalidConfiguration, provider: "container credentials",
                                      message: "AWS_CONTAINER_CREDENTIALS_FULL_URI '\(full)' is not an http(s) URL")
            }
            let allowed = host == "localhost" || host.hasPrefix("127.") || host == "::1" || host == "[::1]"
                || host == "169.254.170.2" || host == "169.254.170.23" || host == "fd00:ec2::23" || host == "[fd00:ec2::23]"
            guard scheme == "https" || allowed else {
                throw CredentialError(code: .invalidConfiguration, provider: "container credentials",
                                      message: "AWS_CONTAINER_CREDENTIALS_FULL_URI over http must name a loopback "
                                        + "address or 169.254.170.2/169.254.170.23, not \(host)")
            }
        } else {
            return nil
        }
        self.url = url
        self.providerDescription = "container credentials (\(url))"
        self.tokenFile = environment["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"].flatMap { $0.isEmpty ? nil : $0 }
        self.token = environment["AWS_CONTAINER_AUTHORIZATION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        self.http = CredentialHTTP(provider: providerDescription, connectTimeout: 2, timeout: 5)
    }

    public func fetchCredentials() throws -> AWSCredentials {
        var headers: [(String, String)] = [("Accept", "application/json")]
        if let tokenFile {
            guard let value = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
                throw CredentialError(code: .invalidConfiguration, provider: providerDescription,
                                      message: "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE \(tokenFile)")
            }
            headers.append(("Authorization", value.trimmingCharacters(in: .whitespacesAndNewlines)))
        } else if let token {
            headers.append(("Authorization", token))
        }
        let response = try http.perform("GET", url, headers: headers, what: "GET \(url)")
        guard response.status == 200 else {
            throw CredentialError(code: .fetchFailed, provider: providerDescription,
                                  message: "GET \(url) answered HTTP \(response.status)",
                                  isRetryable: response.status >= 500 || response.status == 429)
        }
        return try CredentialHTTP.parseJSONCredentials(response.body, provider: providerDescription,
                                                       source: providerDescription, code: .fetchFailed)
    }
}
