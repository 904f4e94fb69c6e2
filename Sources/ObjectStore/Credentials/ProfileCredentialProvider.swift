import Foundation

/// Builds the provider a shared-config profile describes, in the SDKs' order:
///
/// 1. `role_arn` + `source_profile`: STS `AssumeRole` signed with the source profile's
///    credentials (`role_session_name`, `external_id`, `duration_seconds` honoured);
/// 2. `role_arn` + `web_identity_token_file`: STS `AssumeRoleWithWebIdentity`;
/// 3. `aws_access_key_id` + `aws_secret_access_key` (+ `aws_session_token`): static keys;
/// 4. `credential_process`: ``ProcessCredentialProvider``.
enum ProfileCredentials {
    /// The provider for `name`, or nil when the profile does not exist or configures no
    /// credentials.
    /// - Throws: ``CredentialError`` (`invalidConfiguration`) for a broken profile (unknown or
    ///   cyclic `source_profile`, `role_arn` without a source, bad `duration_seconds`).
    static func provider(name: String, files: SharedConfigFiles, region: String, environment: [String: String],
                         caBundle: String?) throws -> (any AWSCredentialProvider)? {
        try provider(name: name, files: files, region: region, environment: environment, caBundle: caBundle,
                     visited: [])
    }

    private static func provider(name: String, files: SharedConfigFiles, region: String, environment: [String: String],
                                 caBundle: String?, visited: [String]) throws -> (any AWSCredentialProvider)? {
        guard let profile = files.profiles[name] else { return nil }
        let label = "profile \(name)"
        func invalid(_ message: String) -> CredentialError {
            CredentialError(code: .invalidConfiguration, provider: label,
                            message: "\(message) (\(files.configPath), \(files.credentialsPath))")
        }
        let staticKeys: AWSCredentials? = {
            guard let id = profile["aws_access_key_id"], !id.isEmpty, let secret = profile["aws_secret_access_key"],
                !secret.isEmpty
            else { return nil }
            return AWSCredentials(accessKeyID: id, secretAccessKey: secret,
                                  sessionToken: profile["aws_session_token"].flatMap { $0.isEmpty ? nil : $0 },
                                  source: label)
        }()
        // A profile reached as another's source_profile that has keys uses them (the SDKs
        // stop at static keys when a source profile points back at itself).
        if let roleARN = profile["role_arn"], !roleARN.isEmpty, !(visited.contains(name) && staticKeys != nil) {
            let duration: Int?
            if let text = profile["duration_seconds"] {
                guard let value = Int(text), value > 0 else { throw invalid("\(label): duration_seconds '\(text)' is not a number of seconds") }
                duration = value
            } else {
                duration = nil
            }
            let profileRegion = profile["region"].flatMap { $0.isEmpty ? nil : $0 } ?? region
            if let sourceName = profile["source_profile"], !sourceName.isEmpty {
                if visited.contains(sourceName) && !(sourceName == name && staticKeys != nil) {
                    throw invalid("\(label): source_profile cycle \((visited + [name, sourceName]).joined(separator: " -> "))")
                }
                let source: any AWSCredentialProvider
                if sourceName == name, let staticKeys {
                    source = StaticCredentialProvider(staticKeys, description: label)
                } else {
                    guard let found = try provider(name: sourceName, files: files, region: region,
                                                   environment: environment, caBundle: caBundle,
                                                   visited: visited + [name])
                    else { throw invalid("\(label): source_profile \(sourceName) does not exist or has no credentials") }
                    source = found
                }
                return AssumeRoleCredentialProvider(
                    roleARN: roleARN, sessionName: profile["role_session_name"], externalID: profile["external_id"],
                    durationSeconds: duration, source: source, region: profileRegion, environment: environment,
                    caBundle: caBundle, description: "\(label) (assume role \(roleARN) via source_profile \(sourceName))")
            }
            if let tokenFile = profile["web_identity_token_file"], !tokenFile.isEmpty {
                return WebIdentityCredentialProvider(
                    tokenFile: tokenFile, roleARN: roleARN, sessionName: profile["role_session_name"],
                    region: profileRegion, environment: environment, caBundle: caBundle,
                    description: "\(label) (web identity, role \(roleARN))")
            }
            if let credentialSource = profile["credential_source"] {
                throw invalid("\(label): credential_source = \(credentialSource) is not supported; use source_profile")
            }
            throw invalid("\(label): role_arn needs source_profile or web_identity_token_file")
        }
        if let staticKeys {
            return StaticCredentialProvider(staticKeys, description: label)
        }
        if let command = profile["credential_process"], !command.isEmpty {
            return ProcessCredentialProvider(command: command, profile: name, environment: environment)
        }
        return nil
    }
}
