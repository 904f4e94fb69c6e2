import Foundation

/// Where `swift build` put the executables (the directory holding the test bundle).
public let productsDirectory: URL = {
    URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
}()

/// One engine deployment for a test: a config file, a staging dir and manifest in a temp dir,
/// a sink (file:// in the temp dir, or a bucket on moto).
public struct EngineSetup: Sendable {
    public let directory: URL
    public let configPath: String
    public let sinkURL: String
    public let topic: String
    public let stack: LocalStack

    /// Writes a config. `sink` nil means a file:// sink inside `directory`. `encoderThreads`
    /// is 2 unless given, so every engine test parses on two threads at once whatever the
    /// machine's core count (the default, 0, would follow the cores).
    public init(stack: LocalStack, topic: String, group: String, directory: URL, sink: String? = nil,
                maxRecords: Int = 5000, maxAge: String = "2s", partSize: String = "16MiB", compression: String = "zstd",
                encoderThreads: Int = 2, sinkExtra: String = "", extra: String = "") throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.directory = directory
        self.stack = stack
        self.topic = topic
        let lake = directory.appendingPathComponent("lake").path
        sinkURL = sink ?? "file://\(lake)"
        let s3 = sinkURL.hasPrefix("s3://") ? "endpoint = \"\(stack.s3Endpoint)\"\n" : ""
        let text = """
            [kafka]
            brokers = "\(stack.kafkaBootstrap)"
            topics = ["\(topic)"]
            group_id = "\(group)"
            session_timeout = "6s"
            [kafka.properties]
            "heartbeat.interval.ms" = "500"
            [sink]
            url = "\(sinkURL)"
            part_size = "\(partSize)"
            compression = "\(compression)"
            \(sinkExtra)
            \(s3)[staging]
            dir = "\(directory.appendingPathComponent("staging").path)"
            manifest = "\(directory.appendingPathComponent("state/manifest.sqlite").path)"
            [batch]
            max_records = \(maxRecords)
            max_age = "\(maxAge)"
            [engine]
            status_interval = "5s"
            encoder_threads = \(encoderThreads)
            \(extra)
            """
        configPath = directory.appendingPathComponent("tidemark.toml").path
        try text.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    /// The environment every engine child gets (moto accepts any credentials).
    public static let awsEnvironment = ["AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                                        "AWS_REGION": "us-east-1"]

    /// Runs `etl-engine --config ... --until-idle idle` to completion.
    public func runEngine(idle: String = "3s", failpoints: String? = nil, timeout: TimeInterval = 240) throws -> ProcessResult {
        var env = Self.awsEnvironment
        if let failpoints { env["TIDEMARK_FAILPOINTS"] = failpoints }
        return try runProcess(productsDirectory.appendingPathComponent("etl-engine").path,
                              ["--config", configPath, "--until-idle", idle], environment: env, timeout: timeout)
    }

    /// Produces `count` log lines with tools/produce_logs.py (the Python client, not our code).
    public func produce(count: Int, partitions: Int = 4, badFraction: Double = 0, seed: Int = 1, startSerial: Int = 0,
                        randomBytes: Int = 0, pad: Int = 0, extraArguments: [String] = []) throws {
        let r = try runPythonTool("produce_logs.py", [
            "--bootstrap", stack.kafkaBootstrap, "--topic", topic, "--count", "\(count)", "--partitions", "\(partitions)",
            "--bad-fraction", "\(badFraction)", "--seed", "\(seed)", "--start-serial", "\(startSerial)",
            "--random-bytes", "\(randomBytes)", "--pad", "\(pad)",
        ] + extraArguments)
        guard r.status == 0 else { throw LocalStack.NotRunning(description: "produce_logs.py failed: \(r.stderr)") }
    }

    /// The independent exactly-once check (tools/verify_sink.py), decoded.
    public func verify(expect: Int) throws -> (ok: Bool, summary: [String: Any], raw: String) {
        var args = ["--bootstrap", stack.kafkaBootstrap, "--topic", topic, "--sink", sinkURL, "--expect", "\(expect)"]
        if sinkURL.hasPrefix("s3://") { args += ["--endpoint", stack.s3Endpoint] }
        let r = try runProcess("python3", [LocalStack.packageRoot.appendingPathComponent("tools/verify_sink.py").path] + args,
                               environment: Self.awsEnvironment, timeout: 300)
        let summary = ((try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any]) ?? [:]
        return (r.status == 0, summary, r.stdout + r.stderr)
    }

    /// Staged Parquet / dead-letter files left in the staging directory (quarantine excluded).
    public func leftoverStagedFiles() -> [String] {
        let root = directory.appendingPathComponent("staging").path
        guard let e = FileManager.default.enumerator(atPath: root) else { return [] }
        var out: [String] = []
        while let rel = e.nextObject() as? String {
            if rel.hasPrefix("quarantine") { continue }
            if rel.hasSuffix(".parquet") || rel.hasSuffix(".jsonl") || rel.hasSuffix(".tmp") { out.append(rel) }
        }
        return out
    }
}


/// Creates a bucket on the stack's moto_server (with boto3, not our client).
public func createBucket(_ name: String, stack: LocalStack) throws {
    let r = try runProcess("python3", ["-c", """
        import boto3, sys
        boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1").create_bucket(Bucket=sys.argv[2])
        """, stack.s3Endpoint, name], environment: EngineSetup.awsEnvironment, timeout: 60)
    guard r.status == 0 else { throw LocalStack.NotRunning(description: "create bucket \(name): \(r.stderr)") }
}
