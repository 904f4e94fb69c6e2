import Foundation
import TestSupport
import Testing

/// `etl-engine --check` on an S3 sink: names the credential provider (never a secret), and
/// proves PutObject + AbortMultipartUpload by creating and aborting an upload under
/// `_tidemark_check/` (issue 21).
@Suite("etl-engine --check credentials")
struct CheckCredentialsTests {
    @Test("--check names web identity or credential_process as the provider, leaves no upload, prints no secret")
    func check() throws {
        let stack = try LocalStack.current()
        let bucket = uniqueName("check")
        try createBucket(bucket, stack: stack)
        try withTemporaryDirectory { dir in
            let setup = try EngineSetup(stack: stack, topic: "logs", group: uniqueName("g"),
                                        directory: dir.appendingPathComponent("deploy"), sink: "s3://\(bucket)/lake")
            let secret = "ProcSecret-\(UUID().uuidString)"
            let script = dir.appendingPathComponent("creds.sh").path
            try "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"AKIDPROCESS\", \"SecretAccessKey\": \"\(secret)\"}'\n"
                .write(toFile: script, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: script)
            let configFile = dir.appendingPathComponent("aws-config").path
            try "[profile ci]\ncredential_process = \(script)\nregion = eu-west-1\n"
                .write(toFile: configFile, atomically: true, encoding: .utf8)
            let tokenFile = dir.appendingPathComponent("token").path
            try "web-token-\(UUID().uuidString)".write(toFile: tokenFile, atomically: true, encoding: .utf8)
            let role = "arn:aws:iam::123456789012:role/tidemark-check"
            let isolated = ["AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
                            "AWS_REGION": "", "AWS_DEFAULT_REGION": "", "AWS_CONFIG_FILE": configFile,
                            "AWS_SHARED_CREDENTIALS_FILE": dir.appendingPathComponent("none").path,
                            "AWS_EC2_METADATA_DISABLED": "true", "AWS_PROFILE": "",
                            "AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_ROLE_ARN": ""]
            let engine = productsDirectory.appendingPathComponent("etl-engine").path

            var web = isolated
            web["AWS_WEB_IDENTITY_TOKEN_FILE"] = tokenFile
            web["AWS_ROLE_ARN"] = role
            web["AWS_ENDPOINT_URL_STS"] = stack.s3Endpoint
            web["AWS_REGION"] = "us-east-1"
            let viaWeb = try runProcess(engine, ["--config", setup.configPath, "--check"], environment: web, timeout: 120)
            #expect(viaWeb.status == 0, "\(viaWeb.stderr)")
            #expect(viaWeb.stdout.contains("credentials: web identity (role \(role))"), "\(viaWeb.stdout)")
            #expect(viaWeb.stdout.contains("region: us-east-1 (from AWS_REGION)"), "\(viaWeb.stdout)")
            #expect(viaWeb.stdout.contains("created and aborted a multipart upload at lake/_tidemark_check/"),
                    "\(viaWeb.stdout)")
            #expect(viaWeb.stdout.contains("conditional writes: honoured"), "\(viaWeb.stdout)")

            var process = isolated
            process["AWS_PROFILE"] = "ci"
            let viaProcess = try runProcess(engine, ["--config", setup.configPath, "--check"], environment: process,
                                            timeout: 120)
            #expect(viaProcess.status == 0, "\(viaProcess.stderr)")
            #expect(viaProcess.stdout.contains("credentials: profile ci (credential_process)"), "\(viaProcess.stdout)")
            #expect(viaProcess.stdout.contains("region: eu-west-1 (from profile ci)"), "\(viaProcess.stdout)")
            #expect(!(viaProcess.stdout + viaProcess.stderr).contains(secret))

            // Both probes were aborted: no multipart upload is left under the prefix.
            let uploads = try runProcess("python3", ["-c", """
                import boto3, sys
                r = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1").list_multipart_uploads(
                    Bucket=sys.argv[2], Prefix="lake/")
                print(len(r.get("Uploads", [])))
                """, stack.s3Endpoint, bucket], environment: EngineSetup.awsEnvironment, timeout: 60)
            #expect(uploads.status == 0, "\(uploads.stderr)")
            #expect(uploads.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
        }
    }
}
