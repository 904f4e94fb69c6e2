import CCurl
import Foundation
import TestSupport
import Testing

/// libcurl talks to moto_server (the S3 protocol peer from `tools/stack up`), signing with its
/// built-in AWS SigV4 support.
@Suite("moto_server through libcurl")
struct MotoIntegrationTests {
    /// Accumulates a response body; handed to curl as the write callback's user data.
    final class Sink {
        var bytes: [UInt8] = []
    }

    struct CurlFailure: Error, CustomStringConvertible {
        let description: String
    }

    struct Response {
        let status: Int
        let body: [UInt8]
    }

    func perform(_ method: String, _ url: String, body: [UInt8]? = nil) throws -> Response {
        let h = try #require(curl_easy_init())
        defer { curl_easy_cleanup(h) }
        let sink = Sink()
        let sinkPtr = Unmanaged.passUnretained(sink).toOpaque()
        var payload = body ?? []
        // Without an explicit type curl labels a body application/x-www-form-urlencoded, and
        // moto (a Flask app) would parse it as a form instead of storing it.
        let headers = curl_slist_append(nil, "Content-Type: application/octet-stream")
        defer { curl_slist_free_all(headers) }
        return try withExtendedLifetime(sink) {
            try payload.withUnsafeMutableBytes { raw in
                #expect(tidemark_curl_easy_setopt_string(h, CURLOPT_URL, url) == CURLE_OK)
                #expect(tidemark_curl_easy_setopt_string(h, CURLOPT_CUSTOMREQUEST, method) == CURLE_OK)
                #expect(tidemark_curl_easy_setopt_string(h, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:s3") == CURLE_OK)
                #expect(tidemark_curl_easy_setopt_string(h, CURLOPT_USERPWD, "testing:testing") == CURLE_OK)
                if body != nil {
                    #expect(tidemark_curl_easy_setopt_slist(h, CURLOPT_HTTPHEADER, headers) == CURLE_OK)
                    #expect(tidemark_curl_easy_setopt_pointer(h, CURLOPT_POSTFIELDS, raw.baseAddress) == CURLE_OK)
                    #expect(tidemark_curl_easy_setopt_off(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(raw.count)) == CURLE_OK)
                }
                #expect(tidemark_curl_easy_setopt_pointer(h, CURLOPT_WRITEDATA, sinkPtr) == CURLE_OK)
                #expect(tidemark_curl_easy_setopt_data_cb(h, CURLOPT_WRITEFUNCTION, { ptr, size, n, user in
                    let sink = Unmanaged<Sink>.fromOpaque(user!).takeUnretainedValue()
                    sink.bytes.append(contentsOf: UnsafeRawBufferPointer(start: ptr, count: size * n))
                    return size * n
                }) == CURLE_OK)
                let rc = curl_easy_perform(h)
                guard rc == CURLE_OK else {
                    throw CurlFailure(description: "curl \(method) \(url): \(String(cString: curl_easy_strerror(rc)))")
                }
                var status = 0
                #expect(tidemark_curl_easy_getinfo_long(h, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK)
                return Response(status: status, body: sink.bytes)
            }
        }
    }

    @Test("PUT then GET of an object returns the same bytes; GET of a missing key is 404")
    func putGet() throws {
        let stack = try LocalStack.current()
        let bucket = uniqueName("bucket")
        #expect(try perform("PUT", "\(stack.s3Endpoint)/\(bucket)").status == 200)
        let object = Array((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let put = try perform("PUT", "\(stack.s3Endpoint)/\(bucket)/dir/object.bin", body: object)
        #expect(put.status == 200)
        let get = try perform("GET", "\(stack.s3Endpoint)/\(bucket)/dir/object.bin")
        #expect(get.status == 200)
        // Compare as a Bool: a failing #expect on two 300 KB arrays would diff them element-wise.
        let same = get.body == object
        #expect(same, "GET returned \(get.body.count) bytes, PUT sent \(object.count); first bytes \(get.body.prefix(16))")
        let missing = try perform("GET", "\(stack.s3Endpoint)/\(bucket)/dir/absent.bin")
        #expect(missing.status == 404)
        #expect(String(decoding: missing.body, as: UTF8.self).contains("NoSuchKey"))
    }
}
