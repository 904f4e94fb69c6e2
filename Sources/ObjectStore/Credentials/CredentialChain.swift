import Foundation

/// Picks the credential provider the way the AWS SDKs do (docs/object-store.md, "Credentials"):
///
/// 1. explicit credentials in ``S3Configuration/credentials``;
/// 2. environment: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`);
/// 3. web identity: `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (+ `AWS_ROLE_SESSION_NAME`),
///    STS `AssumeRoleWithWebIdentity` (endpoint `AWS_ENDPOINT_URL_STS` or
///    `https://sts.<region>.amazonaws.com`);
/// 4. the shared config and credentials files (`AWS_CONFIG_FILE`, default `~/.aws/config`;
///    `AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`), profile
///    ``S3Configuration/profile``, else `AWS_PROFILE`, else `default`: static keys,
///    `role_arn` + `source_profile` (STS `AssumeRole`), `role_arn` + `web_identity_token_file`,
///    or `credential_process`;
/// 5. ECS/EKS container credentials (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` or
///    `AWS_CONTAINER_CREDENTIALS_FULL_URI`, with `AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]`);
/// 6. EC2 instance metadata (IMDSv2), unless `AWS_EC2_METADATA_DISABLED=true`.
///
/// The first provider that is configured is used, without falling through on failure. Its
/// temporary credentials are refreshed before they expire by ``RefreshingCredentialProvider``,
/// which ``S3Store`` asks for credentials on every request it signs.
public enum CredentialChain {
    /// The provider the chain selects. Only files and variables are read: no request is sent
    /// (IMDS, the last resort, is selected whenever it is not disabled).
    /// - Parameters:
    ///   - explicit: credentials given in configuration; used as-is when set.
    ///   - profile: the shared-config profile; nil means `AWS_PROFILE`, else `default`.
    ///   - region: the region for STS calls.
    ///   - caBundle: a PEM CA bundle for STS over TLS.
    ///   - environment: the process environment (injectable for tests).
    /// - Throws: ``CredentialError``: `invalidConfiguration` for a named profile that does not
    ///   exist or is broken, `notFound` when nothing is configured and IMDS is disabled.
    public static func provider(explicit: AWSCredentials?, profile: String?, region: String = "us-east-1",
                                caBundle: String? = nil,
                                environment: [String: String] = ProcessInfo.processInfo.environment)
        throws -> any AWSCredentialProvider
    {
        if let explicit { return StaticCredentialProvider(explicit, description: "explicit ([sink] access_key_id)") }
        if let env = EnvironmentCredentialProvider(environment: environment) { return env }
        if let web = WebIdentityCredentialProvider(environment: environment, region: region, caBundle: caBundle) {
            return web
        }
        let files = SharedConfigFiles(environment: environment)
        let profileName = SharedConfigFiles.profileName(explicit: profile, environment: environment)
        if let found = try ProfileCredentials.provider(name: profileName, files: files, region: region,
                                                       environment: environment, caBundle: caBundle) {
            return found
        }
        let named = profile != nil || environment["AWS_PROFILE"].map { !$0.isEmpty } == true
        if named {
            throw CredentialError(
                code: .invalidConfiguration, provider: "profile \(profileName)",
                message: "no profile '\(profileName)' with credentials in \(files.configPath) or \(files.credentialsPath)")
        }
        if let container = try ContainerCredentialProvider(environment: environment) { return container }
        if !InstanceMetadataCredentialProvider.isDisabled(environment) {
            return InstanceMetadataCredentialProvider(environment: environment)
        }
        throw CredentialError(
            code: .notFound, provider: "credential chain",
            message: "no AWS credentials: none configured, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY unset, "
                + "AWS_WEB_IDENTITY_TOKEN_FILE/AWS_ROLE_ARN unset, no profile '\(profileName)' with credentials in "
                + "\(files.configPath) or \(files.credentialsPath), no AWS_CONTAINER_CREDENTIALS_* and "
                + "AWS_EC2_METADATA_DISABLED=true")
    }

    /// Resolves credentials once (selects the provider and fetches).
    /// - Throws: ``ObjectStoreError`` (`accessDenied`) naming the provider, never a secret.
    public static func resolve(explicit: AWSCredentials?, profile: String?,
                               environment: [String: String] = ProcessInfo.processInfo.environment)
        throws -> AWSCredentials
    {
        do {
            let region = AWSRegion.resolve(explicit: nil, profile: profile, environment: environment).region
            return try provider(explicit: explicit, profile: profile, region: region, environment: environment)
                .fetchCredentials()
        } catch let error as CredentialError {
            throw ObjectStoreError(kind: .accessDenied, operation: "ResolveCredentials", message: "\(error)")
        }
    }
}

/// The region rule: an explicit region (`[sink] region`), else `AWS_REGION`, else
/// `AWS_DEFAULT_REGION`, else the profile's `region` in the shared config file, else
/// `us-east-1`.
public enum AWSRegion {
    /// The region and where it came from (`[sink] region`, `AWS_REGION`, `AWS_DEFAULT_REGION`,
    /// `profile NAME`, `default`).
    public static func resolve(explicit: String?, profile: String?,
                               environment: [String: String] = ProcessInfo.processInfo.environment)
        -> (region: String, source: String)
    {
        if let explicit, !explicit.isEmpty { return (explicit, "configured") }
        if let region = environment["AWS_REGION"], !region.isEmpty { return (region, "AWS_REGION") }
        if let region = environment["AWS_DEFAULT_REGION"], !region.isEmpty { return (region, "AWS_DEFAULT_REGION") }
        let name = SharedConfigFiles.profileName(explicit: profile, environment: environment)
        if let region = SharedConfigFiles(environment: environment).profiles[name]?["region"], !region.isEmpty {
            return (region, "profile \(name)")
        }
        return ("us-east-1", "default")
    }
}
