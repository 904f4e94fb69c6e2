import Foundation

/// The HTTP calls credential providers make (STS, ECS container endpoint, IMDS), over the same
/// libcurl client as ``S3Store``. Failures become ``CredentialError``s naming the provider.
struct CredentialHTTP: Sendable {
    let client: CurlHTTPClient
    let provider: String
    var connectTimeout: TimeInterval = 2
    var timeout: TimeInterval = 10

    init(provider: String, caBundle: String? = nil, connectTimeout: TimeInterval = 2, timeout: TimeInterval = 10) {
        self.client = CurlHTTPClient(caBundle: caBundle, maxIdleConnections: 1)
        self.provider = provider
        self.connectTimeout = connectTimeout
        self.timeout = timeout
    }

    /// Performs a request; a transport failure is a retryable `fetchFailed` naming `what`.
    func perform(_ method: String, _ url: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
                 what: String) throws(CredentialError) -> HTTPResponse {
        let request = HTTPRequest(method: method, url: url, headers: headers, body: body.map { .bytes($0) },
                                  connectTimeout: connectTimeout, timeout: timeout, maxResponseBytes: 1 << 20)
        do {
            return try client.perform(request)
        } catch {
            throw CredentialError(code: .fetchFailed, provider: provider,
                                  message: "\(what): \(error.codeName): \(error.message)", isRetryable: true)
        }
    }

    /// Parses the JSON credential documents of the ECS endpoint, IMDS and `credential_process`
    /// (`AccessKeyId`, `SecretAccessKey`, `Token` or `SessionToken`, `Expiration`).
    static func parseJSONCredentials(_ body: [UInt8], provider: String, source: String, code: CredentialError.Code)
        throws(CredentialError) -> AWSCredentials
    {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else {
            throw CredentialError(code: code, provider: provider, message: "the response is not a JSON object")
        }
        guard let id = object["AccessKeyId"] as? String, !id.isEmpty,
            let secret = object["SecretAccessKey"] as? String, !secret.isEmpty
        else {
            throw CredentialError(code: code, provider: provider,
                                  message: "the response has no AccessKeyId and SecretAccessKey")
        }
        let token = (object["Token"] as? String) ?? (object["SessionToken"] as? String)
        var expiration: Date?
        if let text = object["Expiration"] as? String {
            guard let date = S3XML.parseDate(text) else {
                throw CredentialError(code: code, provider: provider, message: "unparseable Expiration '\(text)'")
            }
            expiration = date
        }
        return AWSCredentials(accessKeyID: id, secretAccessKey: secret,
                              sessionToken: token.flatMap { $0.isEmpty ? nil : $0 }, source: source,
                              expiration: expiration)
    }

    /// `application/x-www-form-urlencoded` body of `pairs`.
    static func formBody(_ pairs: [(String, String)]) -> [UInt8] {
        Array(pairs.map { SigV4Signer.uriEncode($0.0, encodeSlash: true) + "=" + SigV4Signer.uriEncode($0.1, encodeSlash: true) }
            .joined(separator: "&").utf8)
    }
}
