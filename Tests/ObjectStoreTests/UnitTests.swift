import Foundation
@testable import ObjectStore
import TestSupport
import Testing

@Suite("SigV4 signing")
struct SigV4Tests {
    @Test("signs AWS's documented 'GET Object' example to the published signature")
    func awsDocumentedExample() {
        // S3 API Reference, "Signature Calculations for the Authorization Header: Transferring
        // Payload in a Single Chunk (AWS Signature Version 4)", Example: GET Object.
        let signer = SigV4Signer(region: "us-east-1")
        let credentials = AWSCredentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE",
                                         secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
        let date = Date(timeIntervalSince1970: 1_369_353_600)  // 2013-05-24T00:00:00Z
        let headers = signer.sign(method: "GET", host: "examplebucket.s3.amazonaws.com", encodedPath: "/test.txt",
                                  query: [], headers: [("Range", "bytes=0-9")],
                                  payloadSHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                                  credentials: credentials, date: date)
        let authorization = headers.first { $0.0 == "Authorization" }?.1
        #expect(authorization == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test("matches botocore's S3SigV4Auth for keys, queries and headers that need encoding")
    func matchesBotocore() throws {
        let cases: [(method: String, key: String?, query: [(String, String)], headers: [(String, String)], token: String?)] = [
            ("PUT", "logs/a b/ü+%/file=1.parquet", [("partNumber", "3"), ("uploadId", "abc/def+ghi==")],
             [("x-amz-checksum-crc32c", "yZRlqg=="), ("Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg==")], nil),
            ("GET", nil, [("list-type", "2"), ("prefix", "a b/ü"), ("start-after", "x~y*z"), ("max-keys", "1000")],
             [], "session/token+=="),
            ("POST", "k", [("uploads", "")], [("x-amz-meta-tidemark-sha256", "  ab  cd "), ("If-None-Match", "*")], nil),
        ]
        let store = try S3Store(configuration: S3Configuration(bucket: "sig-bucket", endpoint: "http://127.0.0.1:9",
                                                              credentials: motoCredentials))
        let date = Date(timeIntervalSince1970: 1_700_000_000)
        let payload = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        for testCase in cases {
            let credentials = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "secret/key+x",
                                             sessionToken: testCase.token)
            let (url, host, path) = store.address(key: testCase.key, query: testCase.query)
            let ours = SigV4Signer(region: "eu-west-1").sign(
                method: testCase.method, host: host, encodedPath: path, query: testCase.query, headers: testCase.headers,
                payloadSHA256: payload, credentials: credentials, date: date)
            let request: [String: Any] = [
                "method": testCase.method, "url": url, "headers": Dictionary(testCase.headers, uniquingKeysWith: { a, _ in a }),
                "token": testCase.token as Any, "payload": payload,
            ]
            let input = String(decoding: try JSONSerialization.data(withJSONObject: request), as: UTF8.self)
            let result = try runProcess("python3", ["-c", botocoreSigner, input], timeout: 60)
            #expect(result.status == 0, "\(result.stderr)")
            let theirs = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(ours.first { $0.0 == "Authorization" }?.1 == theirs, "\(testCase.method) \(url)")
        }
    }

    @Test("URI-encodes everything but unreserved characters, keeping '/' only in paths")
    func uriEncoding() {
        #expect(SigV4Signer.uriEncode("a b/c~d_e.f-g", encodeSlash: false) == "a%20b/c~d_e.f-g")
        #expect(SigV4Signer.uriEncode("a/b+c=", encodeSlash: true) == "a%2Fb%2Bc%3D")
        #expect(SigV4Signer.uriEncode("ü", encodeSlash: true) == "%C3%BC")
    }

    @Test("builds path-style and virtual-hosted URLs")
    func addressing() throws {
        let path = try S3Store(configuration: S3Configuration(bucket: "my-bucket", endpoint: "http://127.0.0.1:9000",
                                                             credentials: motoCredentials))
        #expect(path.address(key: "a b", query: []).url == "http://127.0.0.1:9000/my-bucket/a%20b")
        let aws = try S3Store(configuration: S3Configuration(bucket: "my-bucket", region: "eu-west-1",
                                                            credentials: motoCredentials))
        let virtual = aws.address(key: "x/y", query: [("uploads", "")])
        #expect(virtual.url == "https://my-bucket.s3.eu-west-1.amazonaws.com/x/y?uploads=")
        #expect(virtual.host == "my-bucket.s3.eu-west-1.amazonaws.com")
        #expect(virtual.path == "/x/y")
        #expect(!aws.usesPathStyle)

        // Dotted bucket names cannot be virtual-hosted over TLS (the wildcard certificate covers
        // one label): AWS falls back to path style, a plain-http endpoint keeps what was asked.
        let dotted = try S3Store(configuration: S3Configuration(bucket: "logs.example.com", region: "eu-west-1",
                                                               credentials: motoCredentials))
        #expect(dotted.usesPathStyle)
        let fallback = dotted.address(key: "x/y", query: [])
        #expect(fallback.url == "https://s3.eu-west-1.amazonaws.com/logs.example.com/x/y")
        #expect(fallback.host == "s3.eu-west-1.amazonaws.com")
        #expect(fallback.path == "/logs.example.com/x/y")
        let plainHTTP = try S3Store(configuration: S3Configuration(bucket: "logs.example.com", endpoint: "http://minio.local:9000",
                                                                  pathStyle: false, credentials: motoCredentials))
        #expect(plainHTTP.address(key: "k", query: []).url == "http://logs.example.com.minio.local:9000/k")
    }
}

/// Signs with botocore (installed with awscli/boto3) at a fixed time; prints the Authorization header.
private let botocoreSigner = """
    import json, sys, datetime
    from unittest import mock
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    r = json.loads(sys.argv[1])
    req = AWSRequest(method=r["method"], url=r["url"], headers=r["headers"])
    req.headers["X-Amz-Content-SHA256"] = r["payload"]
    auth = S3SigV4Auth(Credentials("AKIDEXAMPLE", "secret/key+x", r["token"]), "s3", "eu-west-1")
    fixed = datetime.datetime(2023, 11, 14, 22, 13, 20)
    with mock.patch("botocore.auth.get_current_datetime", return_value=fixed):
        auth.add_auth(req)
    print(req.headers["Authorization"])
    """

@Suite("Checksums")
struct ChecksumTests {
    @Test("CRC32C of \"123456789\" is the standard check value 0xE3069283")
    func crc32cCheckValue() {
        var crc = CRC32C()
        crc.update(Array("123456789".utf8))
        #expect(crc.value == 0xE306_9283)
        #expect(crc.base64 == Data([0xE3, 0x06, 0x92, 0x83]).base64EncodedString())
    }

    @Test("CRC32C fed in pieces equals CRC32C fed at once")
    func crc32cIncremental() {
        let bytes = testBytes(100_003, seed: 7)
        var whole = CRC32C()
        whole.update(bytes)
        var pieces = CRC32C()
        var start = 0
        for size in [1, 7, 8, 9, 4096, 13] + Array(repeating: 10_000, count: 10) where start < bytes.count {
            let end = min(bytes.count, start + size)
            pieces.update(Array(bytes[start..<end]))
            start = end
        }
        pieces.update(Array(bytes[start...]))
        #expect(whole.value == pieces.value)
    }
}

@Suite("Credentials")
struct CredentialTests {
    @Test("explicit beats environment, environment beats the shared file, AWS_PROFILE picks the profile")
    func chainOrder() throws {
        try withTemporaryDirectory { dir in
            let file = dir.appendingPathComponent("credentials").path
            try """
                [default]
                aws_access_key_id = DEFAULTID
                aws_secret_access_key = defaultsecret
                # comment
                [ci]
                aws_access_key_id=CIID
                aws_secret_access_key=cisecret
                aws_session_token=citoken
                """.write(toFile: file, atomically: true, encoding: .utf8)
            let explicit = AWSCredentials(accessKeyID: "EXPLICIT", secretAccessKey: "s")
            let env = ["AWS_ACCESS_KEY_ID": "ENVID", "AWS_SECRET_ACCESS_KEY": "envsecret",
                       "AWS_SHARED_CREDENTIALS_FILE": file, "AWS_PROFILE": "ci"]
            #expect(try CredentialChain.resolve(explicit: explicit, profile: nil, environment: env).accessKeyID == "EXPLICIT")
            #expect(try CredentialChain.resolve(explicit: nil, profile: nil, environment: env).accessKeyID == "ENVID")
            var fileOnly = env
            fileOnly["AWS_ACCESS_KEY_ID"] = nil
            let ci = try CredentialChain.resolve(explicit: nil, profile: nil, environment: fileOnly)
            #expect(ci.accessKeyID == "CIID")
            #expect(ci.sessionToken == "citoken")
            fileOnly["AWS_PROFILE"] = nil
            #expect(try CredentialChain.resolve(explicit: nil, profile: nil, environment: fileOnly).accessKeyID == "DEFAULTID")
            #expect(try CredentialChain.resolve(explicit: nil, profile: "ci", environment: fileOnly).accessKeyID == "CIID")
            #expect(throws: ObjectStoreError.self) {
                try CredentialChain.resolve(explicit: nil, profile: "missing", environment: fileOnly)
            }
        }
    }
}

@Suite("Locations")
struct LocationTests {
    @Test("parses s3:// and file:// URLs and rejects others")
    func parsing() throws {
        #expect(try ObjectStoreLocation(parsing: "s3://my-bucket/logs/prod") == .s3(bucket: "my-bucket", prefix: "logs/prod/"))
        #expect(try ObjectStoreLocation(parsing: "s3://my-bucket") == .s3(bucket: "my-bucket", prefix: ""))
        #expect(try ObjectStoreLocation(parsing: "s3://my-bucket/") == .s3(bucket: "my-bucket", prefix: ""))
        #expect(try ObjectStoreLocation(parsing: "file:///var/lake/") == .file(root: "/var/lake"))
        #expect(try ObjectStoreLocation(parsing: "file:///var/my%20lake") == .file(root: "/var/my lake"))
        #expect(try ObjectStoreLocation(parsing: "file:///var/lake").prefix == "")
        for bad in ["s3://UPPER/x", "s3://ab", "file://relative/x", "http://x/y", "s3://bucket/x?region=1", ""] {
            #expect(throws: ObjectStoreError.self, "\(bad)") { try ObjectStoreLocation(parsing: bad) }
        }
    }

    @Test("makeObjectStore opens a FileStore for file:// locations")
    func makeFileStore() throws {
        try withTemporaryDirectory { dir in
            let store = try makeObjectStore(location: try ObjectStoreLocation(parsing: "file://" + dir.path + "/lake"))
            #expect(store is FileStore)
            _ = try store.putObject(key: "k", data: .bytes([1]), metadata: [:], ifNoneMatch: true)
            #expect(FileManager.default.fileExists(atPath: dir.path + "/lake/k"))
        }
    }
}

@Suite("S3 XML parsing")
struct XMLTests {
    @Test("ignores unknown elements and namespaces")
    func unknownElements() throws {
        let xml = """
            <?xml version="1.0"?><ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
            <Future><Nested>x</Nested></Future><Part><PartNumber>1</PartNumber><New/><ETag>"e"</ETag></Part>
            </ListPartsResult>
            """
        let root = try S3XML.parse(Array(xml.utf8))
        #expect(root.name == "ListPartsResult")
        #expect(root.children("Part").first?.text("ETag") == "\"e\"")
    }

    @Test("rejects malformed, truncated, deeply nested and entity-bomb bodies without crashing")
    func hostileBodies() {
        let deep = String(repeating: "<a>", count: 10_000) + String(repeating: "</a>", count: 10_000)
        let bomb = """
            <?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">
            <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
            <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
            <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
            <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
            <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
            <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
            <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
            <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>
            <Error><Code>&lol9;</Code></Error>
            """
        let external = """
            <?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><Error><Code>&e;</Code></Error>
            """
        for body in ["", "<Error><Code>x</Code>", "not xml at all", "<a></b>", deep, "\u{0}\u{1}<<>>"] {
            #expect(throws: S3XML.ParseError.self, "\(body.prefix(40))") { try S3XML.parse(Array(body.utf8)) }
        }
        // An entity bomb must either fail or stay small (libxml2 caps amplification).
        if let root = try? S3XML.parse(Array(bomb.utf8)) {
            #expect(root.text("Code")!.utf8.count < 10_000_000)
        }
        // External entities are never resolved.
        if let root = try? S3XML.parse(Array(external.utf8)) {
            #expect(!(root.text("Code") ?? "").contains("root:"))
        }
    }
}

@Suite("MultipartUploader sizing")
struct UploaderSizingTests {
    @Test("part size grows to the next whole MiB only when 10,000 parts would not fit")
    func partCountLimit() throws {
        try withTemporaryDirectory { dir in
            let uploader = MultipartUploader(store: try FileStore(root: dir.path), partSize: 5 << 20)
            let fits = Int64(10_000) * (5 << 20)
            #expect(uploader.effectivePartSize(fileSize: fits) == 5 << 20)
            let grown = uploader.effectivePartSize(fileSize: fits + 1)
            #expect(grown == 6 << 20)
            #expect((fits + 1 + grown - 1) / grown <= 10_000)
        }
    }

    @Test("part sizes under 5 MiB and zero concurrency are refused before anything is sent")
    func invalidSettings() throws {
        try withTemporaryDirectory { dir in
            let store = try FileStore(root: dir.path + "/store")
            let path = try writeFile(testBytes(10, seed: 1), in: dir)
            for uploader in [MultipartUploader(store: store, partSize: 1 << 20),
                             MultipartUploader(store: store, partSize: 5 << 20, concurrency: 0)] {
                let error = #expect(throws: ObjectStoreError.self) {
                    try uploader.upload(file: path, key: "k", metadata: [:], onUploadCreated: { _ in },
                                        onPartUploaded: { _ in })
                }
                #expect(error?.kind == .invalidArgument)
            }
            #expect(try store.headObject(key: "k") == nil)
        }
    }
}
