import Foundation
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// An HTTP answer read with curl (an independent client).
struct HTTPAnswer: Sendable {
    var status: Int
    var body: String
}

/// GET http://127.0.0.1:port/path with curl, giving up after `timeout` seconds (status 0 when
/// nothing answered).
func httpGet(_ port: Int, _ path: String, timeout: Int = 5) throws -> HTTPAnswer {
    let r = try runProcess("curl", ["-s", "-m", "\(timeout)", "-w", "\n%{http_code}", "http://127.0.0.1:\(port)\(path)"],
                           timeout: TimeInterval(timeout + 5))
    var lines = r.stdout.components(separatedBy: "\n")
    let code = Int(lines.popLast() ?? "") ?? 0
    return HTTPAnswer(status: code, body: lines.joined(separator: "\n"))
}

/// A family of a parsed scrape: its type and samples (name, labels, value).
struct Family: Sendable {
    var type: String
    var samples: [(name: String, labels: [String: String], value: Double)]

    /// The value of the sample `name` whose labels include `labels` (nil when absent).
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { s in s.name == name && labels.allSatisfy { k, v in s.labels[k] == v } }?.value
    }
}

struct ParseFailure: Error, CustomStringConvertible {
    var description: String
}

/// Parses a /metrics page with Prometheus' own parser (prometheus_client, through
/// tools/check_metrics.py), keyed by family name (counters without `_total`).
func parseExposition(_ page: String) throws -> [String: Family] {
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("tm-scrape-\(UUID().uuidString).txt")
    try page.write(to: file, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: file) }
    let r = try runPythonTool("check_metrics.py", ["parse", file.path], timeout: 60)
    guard r.status == 0,
          let root = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any],
          let families = root["families"] as? [String: [String: Any]] else {
        throw ParseFailure(description: "check_metrics.py parse failed (\(r.status)): \(r.stderr)\npage:\n\(page)")
    }
    var out: [String: Family] = [:]
    for (name, f) in families {
        let samples = (f["samples"] as? [[Any]] ?? []).map { s in
            (name: s[0] as? String ?? "", labels: s[1] as? [String: String] ?? [:], value: (s[2] as? NSNumber)?.doubleValue ?? .nan)
        }
        out[name] = Family(type: f["type"] as? String ?? "", samples: samples)
    }
    return out
}

/// A TCP connection to 127.0.0.1:port that the test holds open; closed by `close()`.
final class RawConnection {
    private(set) var fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            Glibc.close(fd)
            throw ParseFailure(description: "connect 127.0.0.1:\(port): \(String(cString: strerror(errno)))")
        }
    }

    func send(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }

    func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }

    deinit { close() }
}
