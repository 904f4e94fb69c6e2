import Foundation
import ObjectStore
import Pipeline
import Testing
import TidemarkConfig

/// `[sink] region`: set or not, and the AWS region rule when it is not (issue 21).
@Suite("sink region")
struct SinkRegionTests {
    static let base = "[kafka]\nbrokers = \"b:9092\"\ntopics = [\"t\"]\n[sink]\nurl = \"s3://b/p\"\n"

    func load(_ toml: String, _ env: [String: String]) throws -> EngineConfig {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tm-\(UUID()).toml")
        try toml.write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        return try EngineConfig.load(path: url.path, environment: env)
    }

    @Test("unset [sink] region follows AWS_REGION, AWS_DEFAULT_REGION, the profile, then us-east-1; a set one wins")
    func region() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tm-region-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let configFile = dir.appendingPathComponent("config").path
        try "[profile batch]\nregion = eu-west-3\n".write(toFile: configFile, atomically: true, encoding: .utf8)
        var env = ["HOME": dir.path, "AWS_CONFIG_FILE": configFile,
                   "AWS_SHARED_CREDENTIALS_FILE": dir.appendingPathComponent("credentials").path]

        let unset = try load(Self.base, env)
        #expect(unset.sink.region == nil)
        #expect(Engine.s3Configuration(unset, environment: env).region == "us-east-1")
        env["AWS_PROFILE"] = "batch"
        #expect(Engine.s3Configuration(unset, environment: env).region == "eu-west-3")
        env["AWS_DEFAULT_REGION"] = "sa-east-1"
        #expect(Engine.s3Configuration(unset, environment: env).region == "sa-east-1")
        env["AWS_REGION"] = "ap-northeast-2"
        #expect(Engine.s3Configuration(unset, environment: env).region == "ap-northeast-2")

        let set = try load(Self.base + "region = \"us-west-1\"\n", env)
        #expect(set.sink.region == "us-west-1")
        #expect(Engine.s3Configuration(set, environment: env).region == "us-west-1")
        // The TIDEMARK_ override sets it too.
        env["TIDEMARK_SINK_REGION"] = "eu-south-1"
        let overridden = try load(Self.base, env)
        #expect(Engine.s3Configuration(overridden, environment: env).region == "eu-south-1")
    }
}
