import Crypto
import Foundation

/// AWS Signature Version 4 for S3, header-based ("Authenticating Requests: Using the
/// Authorization Header", S3 API Reference; "Create a signed AWS API request", IAM User Guide).
///
/// Every request signs `host`, `x-amz-date`, `x-amz-content-sha256` (the hex SHA-256 of the
/// payload), `x-amz-security-token` when present, and every `x-amz-*`, `content-md5`,
/// `content-type`, `range` and `if-*` header it carries.
struct SigV4Signer: Sendable {
    let region: String
    /// The service in the credential scope: `s3`, or `sts` for AssumeRole.
    var service = "s3"

    /// Headers to add to the request (`x-amz-date`, `x-amz-content-sha256`,
    /// `x-amz-security-token`, `authorization`).
    /// - Parameters:
    ///   - method: HTTP method.
    ///   - host: the `Host` header value (with `:port` when not the scheme default).
    ///   - encodedPath: the already URI-encoded absolute path (encoded once, per S3 rules).
    ///   - query: unencoded query parameters (a valueless parameter has value "").
    ///   - headers: the other headers that will be sent (names any case).
    ///   - payloadSHA256: hex SHA-256 of the body.
    ///   - date: the signing time.
    func sign(method: String, host: String, encodedPath: String, query: [(String, String)], headers: [(String, String)],
              payloadSHA256: String, credentials: AWSCredentials, date: Date) -> [(String, String)]
    {
        let (amzDate, day) = Self.timestamps(date)
        var signed: [(String, String)] = [("host", host), ("x-amz-date", amzDate), ("x-amz-content-sha256", payloadSHA256)]
        if let token = credentials.sessionToken { signed.append(("x-amz-security-token", token)) }
        for (name, value) in headers {
            let lower = name.lowercased()
            if lower.hasPrefix("x-amz-") || lower == "content-md5" || lower == "content-type" || lower == "range"
                || lower.hasPrefix("if-")
            {
                signed.append((lower, value))
            }
        }
        // Canonical headers: lower-case names, trimmed values with inner runs of spaces
        // collapsed, sorted by name; duplicate names joined with commas.
        var merged: [String: [String]] = [:]
        for (name, value) in signed { merged[name, default: []].append(Self.trimAll(value)) }
        let names = merged.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(merged[$0]!.joined(separator: ","))\n" }.joined()
        let signedHeaders = names.joined(separator: ";")
        let canonicalRequest = [
            method, encodedPath, Self.canonicalQuery(query), canonicalHeaders, signedHeaders, payloadSHA256,
        ].joined(separator: "\n")
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = [
            "AWS4-HMAC-SHA256", amzDate, scope, Self.hex(SHA256.hash(data: Array(canonicalRequest.utf8))),
        ].joined(separator: "\n")
        let signature = Self.hex(signingKey(secret: credentials.secretAccessKey, day: day).authenticationCode(stringToSign))
        let authorization = "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), "
            + "SignedHeaders=\(signedHeaders), Signature=\(signature)"
        var out: [(String, String)] = [("x-amz-date", amzDate), ("x-amz-content-sha256", payloadSHA256)]
        if let token = credentials.sessionToken { out.append(("x-amz-security-token", token)) }
        out.append(("Authorization", authorization))
        return out
    }

    /// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, day), region), service), "aws4_request").
    private func signingKey(secret: String, day: String) -> HMACKey {
        var key = SymmetricKey(data: Array(("AWS4" + secret).utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key)))
        }
        return HMACKey(key: key)
    }

    private struct HMACKey {
        let key: SymmetricKey
        func authenticationCode(_ text: String) -> [UInt8] {
            Array(HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: key))
        }
    }

    /// `yyyyMMdd'T'HHmmss'Z'` and `yyyyMMdd` in UTC.
    static func timestamps(_ date: Date) -> (String, String) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        let day = String(format: "%04d%02d%02d", c.year!, c.month!, c.day!)
        return (day + String(format: "T%02d%02d%02dZ", c.hour!, c.minute!, c.second!), day)
    }

    /// Query parameters encoded with ``uriEncode(_:encodeSlash:)`` and sorted by name, then value.
    static func canonicalQuery(_ query: [(String, String)]) -> String {
        let encoded: [(name: String, value: String)] = query.map { pair in
            (uriEncode(pair.0, encodeSlash: true), uriEncode(pair.1, encodeSlash: true))
        }
        let sorted = encoded.sorted { a, b in a.name == b.name ? a.value < b.value : a.name < b.name }
        return sorted.map { pair in pair.name + "=" + pair.value }.joined(separator: "&")
    }

    /// SigV4 URI encoding: every byte except `A-Z a-z 0-9 - . _ ~` becomes `%XX` (upper-case
    /// hex); `/` is kept in paths (`encodeSlash: false`) and encoded in query strings.
    static func uriEncode(_ string: String, encodeSlash: Bool) -> String {
        let hexDigits = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(string.utf8.count)
        for b in string.utf8 {
            if isUnreserved(b) || (b == 0x2f && !encodeSlash) {
                out.append(b)
            } else {
                out.append(0x25)
                out.append(hexDigits[Int(b >> 4)])
                out.append(hexDigits[Int(b & 0xf)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `A-Z a-z 0-9 - . _ ~`
    private static func isUnreserved(_ b: UInt8) -> Bool {
        switch b {
        case 0x41...0x5a, 0x61...0x7a, 0x30...0x39, 0x2d, 0x2e, 0x5f, 0x7e: return true
        default: return false
        }
    }

    private static func trimAll(_ value: String) -> String {
        value.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            .trimmingCharacters(in: .whitespaces)
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in digest {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xf)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
