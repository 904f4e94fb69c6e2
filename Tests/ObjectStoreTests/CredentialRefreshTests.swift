import Foundation
import Logging
@testable import ObjectStore
import TestSupport
import Testing

@Suite("Credential refresh")
struct CredentialRefreshTests {
    static func temporary(_ id: String, expires: Date) -> Result<AWSCredentials, CredentialError> {
        .success(AWSCredentials(accessKeyID: id, secretAccessKey: "s-\(id)", sessionToken: "t-\(id)", source: "scripted",
                                expiration: expires))
    }

    static let outage = Result<AWSCredentials, CredentialError>.failure(
        CredentialError(code: .fetchFailed, provider: "scripted", message: "service unreachable", isRetryable: true))

    @Test("cached until the margin, refreshed inside it; long-term keys are fetched once")
    func margin() throws {
        let t0 = Date()
        let scripted = ScriptedProvider("scripted", results: [Self.temporary("A", expires: t0 + 100),
                                                               Self.temporary("B", expires: t0 + 200)])
        let cache = RefreshingCredentialProvider(provider: scripted, refreshMargin: 30)
        #expect(try cache.credentials(now: t0).accessKeyID == "A")
        #expect(try cache.credentials(now: t0 + 69).accessKeyID == "A")
        #expect(scripted.fetches == 1)
        #expect(try cache.credentials(now: t0 + 71).accessKeyID == "B")  // 29 s left < 30 s margin
        #expect(try cache.credentials(now: t0 + 100).accessKeyID == "B")
        #expect(scripted.fetches == 2)

        let longTerm = ScriptedProvider("static", results: [.success(AWSCredentials(accessKeyID: "L", secretAccessKey: "s"))])
        let staticCache = RefreshingCredentialProvider(provider: longTerm, refreshMargin: 30)
        for offset in [0.0, 1e6, 1e9] { #expect(try staticCache.credentials(now: t0 + offset).accessKeyID == "L") }
        #expect(longTerm.fetches == 1)
    }

    @Test("a failed refresh keeps the valid credentials and warns; after expiry the error names the provider")
    func failureKeepsOldUntilExpiry() throws {
        let t0 = Date()
        let scripted = ScriptedProvider("web identity (role arn:aws:iam::1:role/x)",
                                        results: [Self.temporary("A", expires: t0 + 100)])
        let capture = CapturingLogHandler()
        let cache = RefreshingCredentialProvider(provider: scripted, refreshMargin: 30, retryInterval: 10,
                                                 logger: Logger(label: "test") { _ in capture })
        #expect(try cache.credentials(now: t0).accessKeyID == "A")
        scripted.script([Self.outage])
        #expect(try cache.credentials(now: t0 + 80).accessKeyID == "A")
        #expect(scripted.fetches == 2)
        #expect(capture.text.contains("credential refresh failed"))
        #expect(capture.text.contains("web identity (role arn:aws:iam::1:role/x)"))
        #expect(!capture.text.contains("s-A") && !capture.text.contains("t-A"))
        #expect(try cache.credentials(now: t0 + 85).accessKeyID == "A")  // within retryInterval: no new fetch
        #expect(scripted.fetches == 2)
        #expect(try cache.credentials(now: t0 + 91).accessKeyID == "A")  // retried, failed again, still valid
        #expect(scripted.fetches == 3)
        let error = #expect(throws: CredentialError.self) { try cache.credentials(now: t0 + 101) }
        #expect(error?.code == .expired)
        #expect(error?.description.contains("web identity (role arn:aws:iam::1:role/x)") == true)
        scripted.script([Self.temporary("C", expires: t0 + 1000)])
        #expect(try cache.credentials(now: t0 + 102).accessKeyID == "C")  // recovers once the source does
    }

    @Test("S3Store: once the credentials expire and cannot be refreshed, requests fail naming the provider")
    func storeFailsAfterExpiry() throws {
        let scripted = ScriptedProvider("container credentials (test)",
                                        results: [Self.temporary("ASIAFIRST", expires: Date() + 2)])
        let store = try makeS3Store {
            $0.credentials = nil
            $0.credentialProvider = scripted
            $0.credentialRefreshMargin = 0.5
            $0.maxAttempts = 2
        }
        defer { store.close() }
        #expect(store.credentialSource == "container credentials (test)")
        _ = try store.putObject(key: "before", data: .bytes([1, 2, 3]), metadata: [:], ifNoneMatch: false)
        scripted.script([.failure(CredentialError(code: .fetchFailed, provider: "container credentials (test)",
                                                  message: "HTTP 500"))])
        Thread.sleep(forTimeInterval: 2.2)
        let error = #expect(throws: ObjectStoreError.self) {
            try store.putObject(key: "after", data: .bytes([4]), metadata: [:], ifNoneMatch: false)
        }
        #expect(error?.kind == .accessDenied)
        #expect(error?.operation == "PutObject")
        #expect(error?.message.contains("container credentials (test)") == true)
        #expect(error?.message.contains("expired") == true)
    }

    @Test("a multipart upload whose parts are signed across IMDS credential refreshes completes intact")
    func refreshDuringMultipartUpload() throws {
        let emulator = try MetadataEmulator(mode: "imds", expirySeconds: 3)
        defer { emulator.stop() }
        let proxy = try FaultProxy()
        defer { proxy.stop() }
        let imds = InstanceMetadataCredentialProvider(environment: ["AWS_EC2_METADATA_SERVICE_ENDPOINT": emulator.endpoint])
        let store = try makeS3Store(endpoint: proxy.endpoint) {
            $0.credentials = nil
            $0.credentialProvider = imds
            $0.credentialRefreshMargin = 1.5
        }
        defer { store.close() }
        let partSize = 5 << 20
        let data = testBytes(3 * partSize + 12345, seed: 21)
        let key = "refresh/\(uniqueName("mp")).bin"
        let servedBefore = try emulator.stats()["credentials_served"] ?? 0
        let uploadID = try store.createMultipartUpload(key: key, metadata: [:])
        var parts: [UploadedPart] = []
        for (index, start) in stride(from: 0, to: data.count, by: partSize).enumerated() {
            if index > 0 { Thread.sleep(forTimeInterval: 2) }  // past the 1.5 s margin of a 3 s credential
            let slice = Array(data[start..<min(start + partSize, data.count)])
            parts.append(try store.uploadPart(key: key, uploadID: uploadID, partNumber: index + 1, data: .bytes(slice)))
        }
        _ = try store.completeMultipartUpload(key: key, uploadID: uploadID, parts: parts, ifNoneMatch: true)
        let served = (try emulator.stats()["credentials_served"] ?? 0) - servedBefore
        #expect(parts.count == 4)
        #expect(served >= 2)
        let partKeys = try proxyAccessKeyIDs(proxy) { method, query in method == "PUT" && query["partNumber"] != nil }
        #expect(partKeys.count >= 2)  // the parts were signed with different credentials
        #expect(partKeys.allSatisfy { $0.hasPrefix("ASIAEMUIMDS") })
        #expect(try store.getObject(key: key, range: nil) == data)
    }
}
