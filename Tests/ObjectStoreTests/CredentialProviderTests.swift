import Foundation
import Logging
@testable import ObjectStore
import TestSupport
import Testing

/// Every provider of the chain against moto_server's STS, the metadata emulator
/// (tools/aws_metadata_emulator.py) or a real process, plus the selection order, the region
/// rule and the refresh cache.
@Suite("Credential chain providers")
struct CredentialProviderTests {
    static let roleARN = "arn:aws:iam::123456789012:role/tidemark-writer"

    @Test("the chain picks env, then web identity, then the profile, then container, then IMDS; disabled IMDS ends it")
    func chainOrder() throws {
        try withTemporaryDirectory { dir in
            var env = isolatedAWSEnvironment(dir)
            try "[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = filesecret\n"
                .write(toFile: env["AWS_SHARED_CREDENTIALS_FILE"]!, atomically: true, encoding: .utf8)
            env["AWS_ACCESS_KEY_ID"] = "AKIDENV"
            env["AWS_SECRET_ACCESS_KEY"] = "envsecret"
            env["AWS_SESSION_TOKEN"] = "envtoken"
            env["AWS_WEB_IDENTITY_TOKEN_FILE"] = dir.appendingPathComponent("token").path
            env["AWS_ROLE_ARN"] = Self.roleARN
            env["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"] = "/v2/credentials/abc"
            env["AWS_EC2_METADATA_DISABLED"] = nil

            func selected() throws -> String {
                try CredentialChain.provider(explicit: nil, profile: nil, environment: env).providerDescription
            }
            #expect(try selected() == "environment")
            let fromEnv = try CredentialChain.provider(explicit: nil, profile: nil, environment: env).fetchCredentials()
            #expect(fromEnv.accessKeyID == "AKIDENV")
            #expect(fromEnv.secretAccessKey == "envsecret")
            #expect(fromEnv.sessionToken == "envtoken")
            #expect(fromEnv.expiration == nil)
            let explicit = AWSCredentials(accessKeyID: "AKIDEXPLICIT", secretAccessKey: "x")
            #expect(try CredentialChain.provider(explicit: explicit, profile: nil, environment: env)
                .fetchCredentials().accessKeyID == "AKIDEXPLICIT")

            env["AWS_ACCESS_KEY_ID"] = nil
            #expect(try selected() == "web identity (role \(Self.roleARN))")
            env["AWS_ROLE_ARN"] = nil
            #expect(try selected() == "profile default")
            #expect(try CredentialChain.provider(explicit: nil, profile: nil, environment: env)
                .fetchCredentials().accessKeyID == "AKIDFILE")
            try FileManager.default.removeItem(atPath: env["AWS_SHARED_CREDENTIALS_FILE"]!)
            let container = try CredentialChain.provider(explicit: nil, profile: nil, environment: env)
            #expect(container.providerDescription == "container credentials (http://169.254.170.2/v2/credentials/abc)")
            env["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"] = nil
            #expect(try selected() == "EC2 instance metadata (http://169.254.169.254)")
            env["AWS_EC2_METADATA_DISABLED"] = "TRUE"
            let error = #expect(throws: CredentialError.self) { try selected() }
            #expect(error?.code == .notFound)
            #expect(error?.message.contains("AWS_EC2_METADATA_DISABLED=true") == true)
            // A named profile that does not exist is an error, not a fall-through to IMDS.
            env["AWS_EC2_METADATA_DISABLED"] = nil
            env["AWS_PROFILE"] = "nosuch"
            let named = #expect(throws: CredentialError.self) { try selected() }
            #expect(named?.code == .invalidConfiguration)
            #expect(named?.provider == "profile nosuch")
        }
    }

    @Test("web identity: AssumeRoleWithWebIdentity on moto's STS, token file re-read on every fetch")
    func webIdentity() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let tokenFile = dir.appendingPathComponent("token").path
            try "eyJhbGciOiJSUzI1NiJ9.test.sig\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
            var env = isolatedAWSEnvironment(dir)
            env["AWS_WEB_IDENTITY_TOKEN_FILE"] = tokenFile
            env["AWS_ROLE_ARN"] = Self.roleARN
            env["AWS_ROLE_SESSION_NAME"] = "tidemark-test"
            env["AWS_ENDPOINT_URL_STS"] = stack.s3Endpoint
            let provider = try CredentialChain.provider(explicit: nil, profile: nil, environment: env)
            #expect(provider.providerDescription == "web identity (role \(Self.roleARN))")
            let before = Date()
            let first = try provider.fetchCredentials()
            #expect(!first.accessKeyID.isEmpty)
            #expect(!first.secretAccessKey.isEmpty)
            #expect(first.sessionToken?.isEmpty == false)
            let expiration = try #require(first.expiration)
            #expect(expiration > before)  // moto: now + DurationSeconds (default 3600)
            #expect(expiration < before.addingTimeInterval(3600 + 120))
            let second = try provider.fetchCredentials()
            #expect(second.accessKeyID != first.accessKeyID)  // a new STS call, a new key
            try FileManager.default.removeItem(atPath: tokenFile)
            let error = #expect(throws: CredentialError.self) { try provider.fetchCredentials() }
            #expect(error?.message.contains(tokenFile) == true)
            #expect(error?.provider == provider.providerDescription)
        }
    }

    @Test("profile role_arn + source_profile: AssumeRole signed with the source profile's key, with its duration")
    func assumeRoleProfile() throws {
        let stack = try LocalStack.current()
        let proxy = try FaultProxy()
        defer { proxy.stop() }
        try withTemporaryDirectory { dir in
            var env = isolatedAWSEnvironment(dir)
            try """
                [profile base]
                region = us-east-1
                [profile prod]
                role_arn = \(Self.roleARN)
                source_profile = base
                role_session_name = tidemark-check
                external_id = ext-42
                duration_seconds = 900
                region = eu-west-1
                [profile loop-a]
                role_arn = \(Self.roleARN)
                source_profile = loop-b
                [profile loop-b]
                role_arn = \(Self.roleARN)
                source_profile = loop-a
                """.write(toFile: env["AWS_CONFIG_FILE"]!, atomically: true, encoding: .utf8)
            try "[base]\naws_access_key_id = AKIDBASESOURCE\naws_secret_access_key = basesecret\n"
                .write(toFile: env["AWS_SHARED_CREDENTIALS_FILE"]!, atomically: true, encoding: .utf8)
            env["AWS_PROFILE"] = "prod"
            env["AWS_ENDPOINT_URL_STS"] = proxy.endpoint
            let provider = try CredentialChain.provider(explicit: nil, profile: nil, environment: env)
            #expect(provider.providerDescription
                == "profile prod (assume role \(Self.roleARN) via source_profile base)")
            let before = Date()
            let credentials = try provider.fetchCredentials()
            #expect(credentials.accessKeyID != "AKIDBASESOURCE")
            #expect(credentials.sessionToken?.isEmpty == false)
            let expiration = try #require(credentials.expiration)
            #expect(abs(expiration.timeIntervalSince(before) - 900) < 120)  // duration_seconds reached STS
            let sts = try proxy.log().filter { $0.method == "POST" }
            #expect(sts.count == 1)
            // moto routes the call to STS by the SigV4 scope; the proxy saw the signing key id.
            #expect(try proxyAccessKeyIDs(proxy) == ["AKIDBASESOURCE"])
            _ = stack
            #expect(AWSRegion.resolve(explicit: nil, profile: nil, environment: env) == ("eu-west-1", "profile prod"))

            let cycle = #expect(throws: CredentialError.self) {
                try CredentialChain.provider(explicit: nil, profile: "loop-a", environment: env)
            }
            #expect(cycle?.code == .invalidConfiguration)
            #expect(cycle?.message.contains("cycle") == true)
        }
    }

    @Test("profile role_arn + web_identity_token_file on moto's STS")
    func webIdentityProfile() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            var env = isolatedAWSEnvironment(dir)
            let tokenFile = dir.appendingPathComponent("oidc").path
            try "oidc-token".write(toFile: tokenFile, atomically: true, encoding: .utf8)
            try "[profile ci]\nrole_arn = \(Self.roleARN)\nweb_identity_token_file = \(tokenFile)\n"
                .write(toFile: env["AWS_CONFIG_FILE"]!, atomically: true, encoding: .utf8)
            env["AWS_ENDPOINT_URL_STS"] = stack.s3Endpoint
            let provider = try CredentialChain.provider(explicit: nil, profile: "ci", environment: env)
            #expect(provider.providerDescription == "profile ci (web identity, role \(Self.roleARN))")
            let credentials = try provider.fetchCredentials()
            #expect(credentials.sessionToken?.isEmpty == false)
            #expect(credentials.expiration != nil)
        }
    }

    @Test("credential_process: direct exec and /bin/sh -c, JSON parsed; a failure names the profile, never stdout")
    func credentialProcess() throws {
        try withTemporaryDirectory { dir in
            var env = isolatedAWSEnvironment(dir)
            let good = dir.appendingPathComponent("good.sh").path
            try """
                #!/bin/sh
                printf '{"Version": 1, "AccessKeyId": "AKIDPROC%s", "SecretAccessKey": "procsecret", "SessionToken": "proctoken", "Expiration": "2099-01-02T03:04:05Z"}' "$1"
                """.write(toFile: good, atomically: true, encoding: .utf8)
            let bad = dir.appendingPathComponent("bad.sh").path
            try "#!/bin/sh\necho 'STDOUTSECRET-AKIDLEAK'\necho 'token service unreachable' >&2\nexit 3\n"
                .write(toFile: bad, atomically: true, encoding: .utf8)
            for path in [good, bad] { try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: path) }
            try """
                [profile direct]
                credential_process = \(good) X1
                [profile shell]
                credential_process = "\(good)" "X2" | cat
                [profile failing]
                credential_process = \(bad)
                [profile badjson]
                credential_process = echo '{"Version": 2, "AccessKeyId": "A", "SecretAccessKey": "B"}'
                """.write(toFile: env["AWS_CONFIG_FILE"]!, atomically: true, encoding: .utf8)
            #expect(ProcessCredentialProvider.argv("\(good) X1", path: env["PATH"]) == [good, "X1"])
            #expect(ProcessCredentialProvider.argv("echo hi", path: "/usr/bin:/bin").first?.hasSuffix("/echo") == true)
            #expect(ProcessCredentialProvider.argv("\"\(good)\" \"X2\" | cat", path: nil).prefix(2) == ["/bin/sh", "-c"])

            let direct = try CredentialChain.provider(explicit: nil, profile: "direct", environment: env)
            #expect(direct.providerDescription == "profile direct (credential_process)")
            let c = try direct.fetchCredentials()
            #expect(c.accessKeyID == "AKIDPROCX1")
            #expect(c.secretAccessKey == "procsecret")
            #expect(c.sessionToken == "proctoken")
            #expect(c.expiration == S3XML.parseDate("2099-01-02T03:04:05Z"))
            env["AWS_PROFILE"] = "shell"
            #expect(try CredentialChain.provider(explicit: nil, profile: nil, environment: env)
                .fetchCredentials().accessKeyID == "AKIDPROCX2")

            let failing = try CredentialChain.provider(explicit: nil, profile: "failing", environment: env)
            let error = #expect(throws: CredentialError.self) { try failing.fetchCredentials() }
            #expect(error?.code == .processFailed)
            #expect(error?.description.contains("profile failing") == true)
            #expect(error?.description.contains("status 3") == true)
            #expect(error?.description.contains("token service unreachable") == true)
            #expect(error?.description.contains("STDOUTSECRET") == false)
            let badJSON = try CredentialChain.provider(explicit: nil, profile: "badjson", environment: env)
            let versionError = #expect(throws: CredentialError.self) { try badJSON.fetchCredentials() }
            #expect(versionError?.message.contains("Version") == true)
        }
    }

    @Test("ECS container credentials: full URI with the token or the token file; a wrong token is refused")
    func containerCredentials() throws {
        let emulator = try MetadataEmulator(mode: "ecs", expirySeconds: 600, authToken: "Bearer secret-ecs")
        defer { emulator.stop() }
        try withTemporaryDirectory { dir in
            var env = isolatedAWSEnvironment(dir)
            env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = emulator.endpoint + "/creds"
            env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "Bearer secret-ecs"
            let provider = try CredentialChain.provider(explicit: nil, profile: nil, environment: env)
            #expect(provider.providerDescription == "container credentials (\(emulator.endpoint)/creds)")
            let before = Date()
            let first = try provider.fetchCredentials()
            #expect(first.accessKeyID == "ASIAEMUECS0001")
            #expect(first.sessionToken?.isEmpty == false)
            let expiration = try #require(first.expiration)
            #expect(abs(expiration.timeIntervalSince(before) - 600) < 5)

            // The token file wins over the variable, and is read on each fetch.
            let tokenFile = dir.appendingPathComponent("ecs-token").path
            try "Bearer secret-ecs\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
            env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "Bearer wrong"
            env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = tokenFile
            let fromFile = try #require(try ContainerCredentialProvider(environment: env))
            #expect(try fromFile.fetchCredentials().accessKeyID == "ASIAEMUECS0002")
            try "Bearer rotated-away".write(toFile: tokenFile, atomically: true, encoding: .utf8)
            let refused = #expect(throws: CredentialError.self) { try fromFile.fetchCredentials() }
            #expect(refused?.message.contains("HTTP 401") == true)
            #expect(try emulator.stats()["rejected"] == 1)
            #expect(try emulator.stats()["credentials_served"] == 2)

            env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://example.com/creds"
            let remote = #expect(throws: CredentialError.self) { try ContainerCredentialProvider(environment: env) }
            #expect(remote?.code == .invalidConfiguration)
        }
    }

    @Test("IMDSv2: the token flow is required and followed; AWS_EC2_METADATA_DISABLED skips it; no IMDS fails fast, not retried")
    func instanceMetadata() throws {
        let emulator = try MetadataEmulator(mode: "imds", expirySeconds: 3600)
        defer { emulator.stop() }
        // The emulator refuses GETs without a session token, like IMDSv2 with tokens required.
        let withoutToken = try emulator.request("GET", "/latest/meta-data/iam/security-credentials/")
        #expect(withoutToken.status == 401)
        let badToken = try emulator.request("GET", "/latest/meta-data/iam/security-credentials/",
                                            headers: [("X-aws-ec2-metadata-token", "forged")])
        #expect(badToken.status == 401)
        try withTemporaryDirectory { dir in
            var env = isolatedAWSEnvironment(dir)
            env["AWS_EC2_METADATA_DISABLED"] = nil
            env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = emulator.endpoint + "/"
            let provider = try CredentialChain.provider(explicit: nil, profile: nil, environment: env)
            #expect(provider.providerDescription == "EC2 instance metadata (\(emulator.endpoint))")
            let credentials = try provider.fetchCredentials()
            #expect(credentials.accessKeyID == "ASIAEMUIMDS0001")
            #expect(credentials.sessionToken?.isEmpty == false)
            #expect(credentials.expiration.map { $0 > Date().addingTimeInterval(3000) } == true)
            let stats = try emulator.stats()
            #expect(stats["tokens_issued"] == 1)
            #expect(stats["credentials_served"] == 1)
            #expect(stats["rejected"] == 2)  // only the two probes above

            env["AWS_EC2_METADATA_DISABLED"] = "true"
            #expect(throws: CredentialError.self) { try CredentialChain.provider(explicit: nil, profile: nil, environment: env) }
            #expect(try emulator.stats()["tokens_issued"] == 1)

            // Nothing listening: fails within the short timeouts, as retryable.
            let closed = try MetadataEmulator(mode: "imds")
            let closedEndpoint = closed.endpoint
            closed.stop()
            let nowhere = InstanceMetadataCredentialProvider(environment: ["AWS_EC2_METADATA_SERVICE_ENDPOINT": closedEndpoint])
            let start = Date()
            let error = #expect(throws: CredentialError.self) { try nowhere.fetchCredentials() }
            #expect(Date().timeIntervalSince(start) < 3)
            #expect(error?.isRetryable == false)  // not on EC2: retrying cannot help
            #expect(error?.message.contains("AWS_EC2_METADATA_DISABLED=true") == true)
        }
    }

    @Test("region: [sink] region, then AWS_REGION, AWS_DEFAULT_REGION, the profile's region, us-east-1")
    func region() throws {
        try withTemporaryDirectory { dir in
            var env = isolatedAWSEnvironment(dir)
            try "[default]\nregion = ap-south-1\n[profile eu]\nregion = eu-central-1\n"
                .write(toFile: env["AWS_CONFIG_FILE"]!, atomically: true, encoding: .utf8)
            env["AWS_REGION"] = "us-west-2"
            env["AWS_DEFAULT_REGION"] = "ca-central-1"
            #expect(AWSRegion.resolve(explicit: "eu-north-1", profile: nil, environment: env) == ("eu-north-1", "configured"))
            #expect(AWSRegion.resolve(explicit: nil, profile: nil, environment: env) == ("us-west-2", "AWS_REGION"))
            env["AWS_REGION"] = nil
            #expect(AWSRegion.resolve(explicit: nil, profile: nil, environment: env) == ("ca-central-1", "AWS_DEFAULT_REGION"))
            env["AWS_DEFAULT_REGION"] = ""
            #expect(AWSRegion.resolve(explicit: nil, profile: nil, environment: env) == ("ap-south-1", "profile default"))
            env["AWS_PROFILE"] = "eu"
            #expect(AWSRegion.resolve(explicit: nil, profile: nil, environment: env) == ("eu-central-1", "profile eu"))
            try FileManager.default.removeItem(atPath: env["AWS_CONFIG_FILE"]!)
            #expect(AWSRegion.resolve(explicit: nil, profile: nil, environment: env) == ("us-east-1", "default"))
        }
    }
}

/// The distinct SigV4 access key ids the fault proxy saw, in first-seen order.
func proxyAccessKeyIDs(_ proxy: FaultProxy, where include: (String, [String: String]) -> Bool = { _, _ in true }) throws
    -> [String]
{
    let response = try CurlHTTPClient(caBundle: nil, maxIdleConnections: 1).perform(
        HTTPRequest(method: "GET", url: proxy.endpoint + "/__proxy__/log", headers: [], body: nil, connectTimeout: 5,
                    timeout: 10, maxResponseBytes: 64 << 20))
    let entries = try JSONSerialization.jsonObject(with: Data(response.body)) as? [[String: Any]] ?? []
    var seen: [String] = []
    for entry in entries {
        guard let id = entry["access_key_id"] as? String,
            include(entry["method"] as? String ?? "", entry["query"] as? [String: String] ?? [:])
        else { continue }
        if !seen.contains(id) { seen.append(id) }
    }
    return seen
}
