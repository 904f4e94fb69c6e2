import Crypto
import Foundation

/// The two STS calls the chain needs ("AWS Security Token Service API Reference"):
/// `AssumeRoleWithWebIdentity` (unsigned) and `AssumeRole` (signed with SigV4, service `sts`),
/// both as Query API POSTs. The XML response's `Credentials` (`AccessKeyId`,
/// `SecretAccessKey`, `SessionToken`, `Expiration`) become ``AWSCredentials``.
struct STSClient: Sendable {
    /// `https://sts.<region>.amazonaws.com`, or `AWS_ENDPOINT_URL_STS`.
    let endpoint: String
    let region: String
    let http: CredentialHTTP

    init(region: String, environment: [String: String], provider: String, caBundle: String?) {
        self.region = region
        self.endpoint = Self.endpoint(region: region, environment: environment)
        self.http = CredentialHTTP(provider: provider, caBundle: caBundle, connectTimeout: 5, timeout: 30)
    }

    /// `AWS_ENDPOINT_URL_STS` when set, else the regional endpoint.
    static func endpoint(region: String, environment: [String: String]) -> String {
        if let url = environment["AWS_ENDPOINT_URL_STS"], !url.isEmpty { return url }
        return "https://sts.\(region).amazonaws.com"
    }

    func assumeRoleWithWebIdentity(roleARN: String, sessionName: String, token: String, durationSeconds: Int?)
        throws(CredentialError) -> AWSCredentials
    {
        var form = [("Action", "AssumeRoleWithWebIdentity"), ("Version", "2011-06-15"), ("RoleArn", roleARN),
                    ("RoleSessionName", sessionName), ("WebIdentityToken", token)]
        if let durationSeconds { form.append(("DurationSeconds", "\(durationSeconds)")) }
        return try call("AssumeRoleWithWebIdentity", form: form, signWith: nil)
    }

    func assumeRole(roleARN: String, sessionName: String, externalID: String?, durationSeconds: Int?,
                    credentials: AWSCredentials) throws(CredentialError) -> AWSCredentials
    {
        var form = [("Action", "AssumeRole"), ("Version", "2011-06-15"), ("RoleArn", roleARN),
                    ("RoleSessionName", sessionName)]
        if let externalID { form.append(("ExternalId", externalID)) }
        if let durationSeconds { form.append(("DurationSeconds", "\(durationSeconds)")) }
        return try call("AssumeRole", form: form, signWith: credentials)
    }

    private func call(_ action: String, form: [(String, String)], signWith credentials: AWSCredentials?)
        throws(CredentialError) -> AWSCredentials
    {
        let parsed: S3Store.Endpoint
        do {
            parsed = try S3Store.Endpoint(endpoint)
        } catch {
            throw CredentialError(code: .invalidConfiguration, provider: http.provider,
                                  message: "STS endpoint: \((error as? ObjectStoreError)?.message ?? "\(error)")")
        }
        let body = CredentialHTTP.formBody(form)
        var headers = [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")]
        if let credentials {
            let signer = SigV4Signer(region: region, service: "sts")
            headers += signer.sign(method: "POST", host: parsed.authority, encodedPath: "/", query: [],
                                   headers: headers, payloadSHA256: SigV4Signer.hex(SHA256.hash(data: body)),
                                   credentials: credentials, date: Date())
        }
        let url = "\(parsed.scheme)://\(parsed.authority)/"
        let response = try http.perform("POST", url, headers: headers, body: body, what: "STS \(action) at \(url)")
        let root = try? S3XML.parse(response.body)
        guard (200..<300).contains(response.status) else {
            let error = root.flatMap { $0.name == "ErrorResponse" ? $0.child("Error") : ($0.name == "Error" ? $0 : nil) }
            let code = error?.text("Code") ?? "HTTP \(response.status)"
            let message = error?.text("Message") ?? ""
            throw CredentialError(code: .fetchFailed, provider: http.provider,
                                  message: "STS \(action) refused: \(code) \(message)".trimmingCharacters(in: .whitespaces),
                                  isRetryable: response.status >= 500 || response.status == 429)
        }
        guard let root, let node = Self.find("Credentials", in: root),
            let id = node.text("AccessKeyId"), let secret = node.text("SecretAccessKey")
        else {
            throw CredentialError(code: .fetchFailed, provider: http.provider,
                                  message: "STS \(action): response has no Credentials")
        }
        let expiration = S3XML.parseDate(node.text("Expiration")?.trimmingCharacters(in: .whitespacesAndNewlines))
        return AWSCredentials(accessKeyID: id.trimmingCharacters(in: .whitespacesAndNewlines),
                              secretAccessKey: secret.trimmingCharacters(in: .whitespacesAndNewlines),
                              sessionToken: node.text("SessionToken")?.trimmingCharacters(in: .whitespacesAndNewlines),
                              source: http.provider, expiration: expiration)
    }

    /// Depth-first search for the first element named `name`.
    static func find(_ name: String, in node: XMLElementNode) -> XMLElementNode? {
        if node.name == name { return node }
        for child in node.children {
            if let found = find(name, in: child) { return found }
        }
        return nil
    }
}
