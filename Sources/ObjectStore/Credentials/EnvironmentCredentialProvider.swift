import Foundation

/// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`), read once.
public struct EnvironmentCredentialProvider: AWSCredentialProvider {
    public let providerDescription = "environment"
    private let credentials: AWSCredentials

    /// Nil when either variable is unset or empty.
    public init?(environment: [String: String]) {
        guard let id = environment["AWS_ACCESS_KEY_ID"], !id.isEmpty,
            let secret = environment["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty
        else { return nil }
        let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        credentials = AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: token, source: "environment")
    }

    public func fetchCredentials() throws -> AWSCredentials { credentials }
}
