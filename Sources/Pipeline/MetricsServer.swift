import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A minimal HTTP endpoint serving Prometheus text exposition (format 0.0.4) at `/metrics`.
///
/// Hand-written rather than built on swift-prometheus + an HTTP server package: the engine needs
/// one read-only page, and a NIO-based server would double the build time of every CI run. It
/// binds 127.0.0.1 by default (`[engine] metrics_host`), answers one request per connection, and
/// never reads more than 8 KiB of a request.
public final class MetricsServer: @unchecked Sendable {
    // @unchecked Sendable: `fd` is set in init and closed once in stop(); the render closure is Sendable.
    private var fd: Int32
    private let render: @Sendable () -> String
    private let logger: Logger
    /// The port actually bound (useful with port 0).
    public let port: Int

    public struct BindError: Error, CustomStringConvertible {
        public let description: String
    }

    public init(host: String, port: Int, logger: Logger, render: @escaping @Sendable () -> String) throws {
        self.render = render
        self.logger = logger
        let sock = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard sock >= 0 else { throw BindError(description: "metrics: socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else {
            close(sock)
            throw BindError(description: "metrics: '\(host)' is not an IPv4 address ([engine] metrics_host)")
        }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(sock, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(sock, 16) == 0 else {
            let e = String(cString: strerror(errno))
            close(sock)
            throw BindError(description: "metrics: cannot listen on \(host):\(port): \(e)")
        }
        var actual = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(sock, $0, &len) }
        }
        self.port = Int(UInt16(bigEndian: actual.sin_port))
        fd = sock
        let t = Thread { [self] in self.serve() }
        t.name = "tidemark-metrics"
        t.start()
    }

    public func stop() {
        let f = fd
        fd = -1
        if f >= 0 {
            shutdown(f, Int32(SHUT_RDWR))
            close(f)
        }
    }

    private func serve() {
        while true {
            let listener = fd
            guard listener >= 0 else { return }
            let c = accept(listener, nil, nil)
            if c < 0 {
                if errno == EINTR { continue }
                return
            }
            var buf = [UInt8](repeating: 0, count: 8192)
            let n = buf.withUnsafeMutableBytes { read(c, $0.baseAddress, $0.count) }
            let request = n > 0 ? String(decoding: buf[0..<n], as: UTF8.self) : ""
            let response: String
            if request.hasPrefix("GET /metrics") {
                let body = render()
                response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body
            } else {
                let body = "see /metrics\n"
                response = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body
            }
            var bytes = Array(response.utf8)
            var off = 0
            while off < bytes.count {
                let w = bytes.withUnsafeMutableBytes { write(c, $0.baseAddress! + off, $0.count - off) }
                if w <= 0 { break }
                off += w
            }
            close(c)
        }
    }
}

/// Engine counters, updated by the poll thread and upload workers, read by the metrics page.
public final class EngineMetrics: Sendable {
    let recordsIn = Atomic<Int>(0)
    let recordsRejected = Atomic<Int>(0)
    let bytesIn = Atomic<Int>(0)
    let batchesStaged = Atomic<Int>(0)
    let batchesCommitted = Atomic<Int>(0)
    let batchesAbandoned = Atomic<Int>(0)
    let batchesSuperseded = Atomic<Int>(0)
    let uploadSeconds = Atomic<Int>(0)   // microseconds
    let dataLossRecords = Atomic<Int>(0)
    let uploadCount = Atomic<Int>(0)
    let lag = Mutex<[String: Int64]>([:])
    let states = Mutex<[String: Int]>([:])

    public init() {}

    /// Prometheus text exposition of every metric.
    func render(bytesUploaded: Int64) -> String {
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(String, String)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (labels, value) in samples { out += "\(name)\(labels) \(value)\n" }
        }
        metric("tidemark_records_in_total", "counter", "Kafka records read.", [("", "\(recordsIn.load(ordering: .relaxed))")])
        metric("tidemark_records_rejected_total", "counter", "Records sent to the dead-letter store.", [("", "\(recordsRejected.load(ordering: .relaxed))")])
        metric("tidemark_input_bytes_total", "counter", "Bytes of record values read.", [("", "\(bytesIn.load(ordering: .relaxed))")])
        metric("tidemark_bytes_uploaded_total", "counter", "Bytes uploaded to the object store.", [("", "\(bytesUploaded)")])
        metric("tidemark_batches_total", "counter", "Batches by outcome.", [
            ("{outcome=\"staged\"}", "\(batchesStaged.load(ordering: .relaxed))"),
            ("{outcome=\"committed\"}", "\(batchesCommitted.load(ordering: .relaxed))"),
            ("{outcome=\"abandoned\"}", "\(batchesAbandoned.load(ordering: .relaxed))"),
            ("{outcome=\"superseded\"}", "\(batchesSuperseded.load(ordering: .relaxed))"),
        ])
        metric("tidemark_data_loss_records_total", "counter",
               "Offsets deleted by retention before they were delivered (each range is also in the manifest and the log).",
               [("", "\(dataLossRecords.load(ordering: .relaxed))")])
        metric("tidemark_batch_commit_seconds", "summary", "Time from a batch sealed to its offsets committed.", [
            ("_sum", String(format: "%.6f", Double(uploadSeconds.load(ordering: .relaxed)) / 1e6)),
            ("_count", "\(uploadCount.load(ordering: .relaxed))"),
        ])
        metric("tidemark_manifest_batches", "gauge", "Manifest batches by state.",
               states.withLock { $0 }.sorted { $0.key < $1.key }.map { ("{state=\"\($0.key)\"}", "\($0.value)") })
        metric("tidemark_consumer_lag", "gauge", "High watermark minus next offset to read, per partition.",
               lag.withLock { $0 }.sorted { $0.key < $1.key }.map { ("{partition=\"\($0.key)\"}", "\($0.value)") })
        return out
    }
}
