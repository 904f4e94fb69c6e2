import CCurl
import Foundation

/// One HTTP/1.1 request for ``CurlHTTPClient``.
struct HTTPRequest: Sendable {
    var method: String
    var url: String
    var headers: [(String, String)]
    var body: ObjectBody?
    var connectTimeout: TimeInterval
    var timeout: TimeInterval
    /// Responses with a larger body fail (protects XML parsing from hostile servers).
    var maxResponseBytes: Int
}

/// A response: status, lower-cased header names, body.
struct HTTPResponse: Sendable {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]
}

/// A request that got no complete HTTP response (connect failure, reset, timeout, TLS error).
struct TransportError: Error, Sendable {
    /// The libcurl `CURLcode`.
    var curlCode: Int
    /// libcurl's message for the code.
    var message: String

    /// Whether a retry may succeed: timeouts, connection failures, resets, partial transfers.
    /// TLS verification failures and local errors are permanent.
    var isRetryable: Bool {
        switch CURLcode(UInt32(curlCode)) {
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_CONNECT, CURLE_OPERATION_TIMEDOUT, CURLE_SEND_ERROR,
            CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE, CURLE_HTTP2, CURLE_HTTP2_STREAM,
            CURLE_SSL_CONNECT_ERROR:
            return true
        default:
            return false
        }
    }

    var isTimeout: Bool { CURLcode(UInt32(curlCode)) == CURLE_OPERATION_TIMEDOUT }

    /// The libcurl symbolic name, e.g. `CURLE_OPERATION_TIMEDOUT`.
    var codeName: String {
        switch CURLcode(UInt32(curlCode)) {
        case CURLE_COULDNT_RESOLVE_HOST: return "CURLE_COULDNT_RESOLVE_HOST"
        case CURLE_COULDNT_CONNECT: return "CURLE_COULDNT_CONNECT"
        case CURLE_OPERATION_TIMEDOUT: return "CURLE_OPERATION_TIMEDOUT"
        case CURLE_SEND_ERROR: return "CURLE_SEND_ERROR"
        case CURLE_RECV_ERROR: return "CURLE_RECV_ERROR"
        case CURLE_GOT_NOTHING: return "CURLE_GOT_NOTHING"
        case CURLE_PARTIAL_FILE: return "CURLE_PARTIAL_FILE"
        case CURLE_PEER_FAILED_VERIFICATION: return "CURLE_PEER_FAILED_VERIFICATION"
        case CURLE_WRITE_ERROR: return "CURLE_WRITE_ERROR"
        case CURLE_READ_ERROR: return "CURLE_READ_ERROR"
        default: return "CURLcode \(curlCode)"
        }
    }
}

/// An HTTP/1.1 client over libcurl easy handles with keep-alive.
///
/// Each in-flight request checks out one easy handle from a small pool and returns it after
/// the transfer; an easy handle keeps its connection cache across `curl_easy_reset`, so
/// sequential requests on one thread reuse their TCP (and TLS) connection. N threads calling
/// concurrently use N handles, i.e. N connections in flight.
final class CurlHTTPClient: Sendable {
    private let pool = Locked<[CurlEasyHandle]>([])
    private let maxIdle: Int
    private let caBundle: String?

    private static let globalInit: Void = {
        // curl_global_init is not thread-safe; Swift runs this initializer exactly once.
        _ = curl_global_init(Int(CURL_GLOBAL_DEFAULT))
    }()

    init(caBundle: String?, maxIdleConnections: Int) {
        _ = Self.globalInit
        self.caBundle = caBundle
        self.maxIdle = max(1, maxIdleConnections)
    }

    /// Closes every idle handle (and its connections). In-flight requests finish normally.
    func close() {
        let handles = pool.withLock { pool -> [CurlEasyHandle] in
            defer { pool.removeAll() }
            return pool
        }
        handles.forEach { $0.close() }
    }

    deinit { close() }

    /// Performs one request, blocking the calling thread.
    func perform(_ request: HTTPRequest) throws(TransportError) -> HTTPResponse {
        let handle = pool.withLock { $0.popLast() } ?? CurlEasyHandle()
        defer {
            let keep = pool.withLock { pool -> Bool in
                guard pool.count < maxIdle else { return false }
                pool.append(handle)
                return true
            }
            if !keep { handle.close() }
        }
        return try handle.perform(request, caBundle: caBundle)
    }
}

/// Per-transfer state reached from libcurl's callbacks through the `userdata` pointer.
private final class TransferState {
    var body: [UInt8] = []
    var headers: [String: String] = [:]
    var maxResponseBytes: Int
    var overflowed = false
    var source: BodySource?

    enum BodySource {
        case bytes([UInt8], position: Int)
        case file(FileRangeReader)
    }

    init(maxResponseBytes: Int) { self.maxResponseBytes = maxResponseBytes }
}

/// Owns one `CURL *` easy handle.
///
/// `@unchecked Sendable`: the handle is used by exactly one thread at a time. The pool in
/// ``CurlHTTPClient`` hands it out under a lock, and it is returned only after
/// `curl_easy_perform` has finished; libcurl allows an easy handle to move between threads
/// as long as it is never used from two at once.
final class CurlEasyHandle: @unchecked Sendable {
    private var handle: UnsafeMutableRawPointer?

    init() {
        handle = curl_easy_init()
    }

    func close() {
        if let handle {
            curl_easy_cleanup(handle)
            self.handle = nil
        }
    }

    deinit { close() }

    func perform(_ request: HTTPRequest, caBundle: String?) throws(TransportError) -> HTTPResponse {
        guard let h = handle else { throw TransportError(curlCode: Int(CURLE_FAILED_INIT.rawValue), message: "no curl handle") }
        curl_easy_reset(h)
        let state = TransferState(maxResponseBytes: request.maxResponseBytes)
        let userdata = Unmanaged.passUnretained(state).toOpaque()

        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }
        // Disable `Expect: 100-continue` (an extra round trip per part) and curl's default
        // form Content-Type on POST.
        var headerLines = request.headers.map { "\($0.0): \($0.1)" }
        headerLines.append("Expect:")
        if !request.headers.contains(where: { $0.0.lowercased() == "content-type" }) { headerLines.append("Content-Type:") }
        for line in headerLines { headerList = curl_slist_append(headerList, line) }

        _ = tidemark_curl_easy_setopt_string(h, CURLOPT_URL, request.url)
        _ = tidemark_curl_easy_setopt_long(h, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_1_1))
        _ = tidemark_curl_easy_setopt_long(h, CURLOPT_NOSIGNAL, 1)
        _ = tidemark_curl_easy_setopt_long(h, CURLOPT_TCP_KEEPALIVE, 1)
        _ = tidemark_curl_easy_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, Int(request.connectTimeout * 1000))
        _ = tidemark_curl_easy_setopt_long(h, CURLOPT_TIMEOUT_MS, Int(request.timeout * 1000))
        _ = tidemark_curl_easy_setopt_long(h, CURLOPT_SSL_VERIFYPEER, 1)
        _ = tidemark_curl_easy_setopt_long(h, CURLOPT_SSL_VERIFYHOST, 2)
        if let caBundle { _ = tidemark_curl_easy_setopt_string(h, CURLOPT_CAINFO, caBundle) }
        _ = tidemark_curl_easy_setopt_slist(h, CURLOPT_HTTPHEADER, headerList)
        _ = tidemark_curl_easy_setopt_data_cb(h, CURLOPT_WRITEFUNCTION, curlWrite)
        _ = tidemark_curl_easy_setopt_pointer(h, CURLOPT_WRITEDATA, userdata)
        _ = tidemark_curl_easy_setopt_data_cb(h, CURLOPT_HEADERFUNCTION, curlHeader)
        _ = tidemark_curl_easy_setopt_pointer(h, CURLOPT_HEADERDATA, userdata)

        var reader: FileRangeReader?
        defer { reader?.close() }
        let bodyLength = request.body?.length ?? 0
        switch request.body {
        case .bytes(let bytes): state.source = .bytes(bytes, position: 0)
        case .fileRange(let path, let offset, let length):
            do {
                let r = try FileRangeReader(path: path, offset: offset, length: length)
                reader = r
                state.source = .file(r)
            } catch {
                throw TransportError(curlCode: Int(CURLE_READ_ERROR.rawValue), message: "\(error)")
            }
        case nil: break
        }
        switch request.method {
        case "GET": break
        case "HEAD": _ = tidemark_curl_easy_setopt_long(h, CURLOPT_NOBODY, 1)
        case "PUT":
            _ = tidemark_curl_easy_setopt_long(h, CURLOPT_UPLOAD, 1)
            _ = tidemark_curl_easy_setopt_off(h, CURLOPT_INFILESIZE_LARGE, curl_off_t(bodyLength))
        case "POST":
            _ = tidemark_curl_easy_setopt_long(h, CURLOPT_POST, 1)
            _ = tidemark_curl_easy_setopt_off(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(bodyLength))
        default:
            _ = tidemark_curl_easy_setopt_string(h, CURLOPT_CUSTOMREQUEST, request.method)
        }
        if request.method == "PUT" || request.method == "POST" {
            _ = tidemark_curl_easy_setopt_data_cb(h, CURLOPT_READFUNCTION, curlRead)
            _ = tidemark_curl_easy_setopt_pointer(h, CURLOPT_READDATA, userdata)
            _ = tidemark_curl_easy_setopt_seek_cb(h, CURLOPT_SEEKFUNCTION, curlSeek)
            _ = tidemark_curl_easy_setopt_pointer(h, CURLOPT_SEEKDATA, userdata)
        }

        let code = curl_easy_perform(h)
        withExtendedLifetime(state) {}
        if code != CURLE_OK {
            if state.overflowed {
                throw TransportError(curlCode: Int(code.rawValue),
                                     message: "response body larger than \(request.maxResponseBytes) bytes")
            }
            throw TransportError(curlCode: Int(code.rawValue), message: String(cString: curl_easy_strerror(code)))
        }
        var status = 0
        _ = tidemark_curl_easy_getinfo_long(h, CURLINFO_RESPONSE_CODE, &status)
        return HTTPResponse(status: status, headers: state.headers, body: state.body)
    }
}

// libcurl callbacks: plain C function pointers, reaching their state through `userdata`.

private let curlWrite: tidemark_curl_data_cb = { pointer, size, count, userdata in
    let state = Unmanaged<TransferState>.fromOpaque(userdata!).takeUnretainedValue()
    let n = size * count
    if state.body.count + n > state.maxResponseBytes {
        state.overflowed = true
        return 0  // makes curl fail with CURLE_WRITE_ERROR
    }
    if n > 0 { state.body.append(contentsOf: UnsafeRawBufferPointer(start: pointer, count: n)) }
    return n
}

private let curlHeader: tidemark_curl_data_cb = { pointer, size, count, userdata in
    let state = Unmanaged<TransferState>.fromOpaque(userdata!).takeUnretainedValue()
    let n = size * count
    let line = String(decoding: UnsafeRawBufferPointer(start: pointer, count: n), as: UTF8.self)
    if line.hasPrefix("HTTP/") {
        state.headers = [:]  // a new response (after 100 Continue or a redirect) starts
    } else if let colon = line.firstIndex(of: ":") {
        let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
        let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
        state.headers[name] = value
    }
    return n
}

private let curlRead: tidemark_curl_data_cb = { pointer, size, count, userdata in
    let state = Unmanaged<TransferState>.fromOpaque(userdata!).takeUnretainedValue()
    let capacity = size * count
    let buffer = UnsafeMutableRawBufferPointer(start: pointer, count: capacity)
    switch state.source {
    case .bytes(let bytes, let position):
        let n = min(capacity, bytes.count - position)
        if n > 0 {
            bytes.withUnsafeBytes { src in
                buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[position..<position + n]))
            }
        }
        state.source = .bytes(bytes, position: position + n)
        return n
    case .file(let reader):
        do { return try reader.read(into: buffer) } catch { return Int(CURL_READFUNC_ABORT) }
    case nil:
        return 0
    }
}

private let curlSeek: tidemark_curl_seek_cb = { userdata, offset, origin in
    let state = Unmanaged<TransferState>.fromOpaque(userdata!).takeUnretainedValue()
    guard origin == SEEK_SET else { return Int32(CURL_SEEKFUNC_CANTSEEK) }
    switch state.source {
    case .bytes(let bytes, _):
        guard offset >= 0 && Int(offset) <= bytes.count else { return Int32(CURL_SEEKFUNC_FAIL) }
        state.source = .bytes(bytes, position: Int(offset))
        return Int32(CURL_SEEKFUNC_OK)
    case .file(let reader):
        return reader.seek(to: Int64(offset)) ? Int32(CURL_SEEKFUNC_OK) : Int32(CURL_SEEKFUNC_FAIL)
    case nil:
        return offset == 0 ? Int32(CURL_SEEKFUNC_OK) : Int32(CURL_SEEKFUNC_FAIL)
    }
}

/// A value behind an `NSLock`.
final class Locked<Value>: @unchecked Sendable {
    // @unchecked Sendable: every access to `value` goes through `lock`.
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
