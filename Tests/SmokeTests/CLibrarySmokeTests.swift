import CCurl
import CZstd
import Crypto
import Foundation
import GRDB
import KafkaMock
import TestSupport
import Testing

/// Each C library the project is built on links and does real work.
@Suite("C library smoke tests")
struct CLibrarySmokeTests {
    @Test("libzstd compresses and decompresses a buffer back to the same bytes")
    func zstdRoundTrip() throws {
        let input = Array((0..<100_000).map { UInt8(truncatingIfNeeded: $0 % 251) })
        var compressed = [UInt8](repeating: 0, count: ZSTD_compressBound(input.count))
        let csize = input.withUnsafeBytes { src in
            compressed.withUnsafeMutableBytes { dst in
                ZSTD_compress(dst.baseAddress, dst.count, src.baseAddress, src.count, 3)
            }
        }
        #expect(ZSTD_isError(csize) == 0)
        #expect(csize < input.count / 10, "repetitive input must compress well")
        var output = [UInt8](repeating: 0, count: input.count)
        let dsize = compressed.withUnsafeBytes { src in
            output.withUnsafeMutableBytes { dst in
                ZSTD_decompress(dst.baseAddress, dst.count, src.baseAddress, csize)
            }
        }
        #expect(ZSTD_isError(dsize) == 0)
        #expect(dsize == input.count)
        #expect(output == input)
    }

    @Test("libcurl initialises and reports HTTP support and a TLS backend")
    func curlVersion() throws {
        #expect(curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK)
        let info = tidemark_curl_version_info()!.pointee
        let protocols = sequence(first: info.protocols, next: { $0.advanced(by: 1) })
            .prefix { $0.pointee != nil }
            .map { String(cString: $0.pointee!) }
        #expect(protocols.contains("http"))
        #expect(protocols.contains("https"))
        #expect(info.ssl_version != nil)
        let handle = curl_easy_init()
        #expect(handle != nil)
        #expect(tidemark_curl_easy_setopt_long(handle, CURLOPT_TIMEOUT_MS, 1000) == CURLE_OK)
        curl_easy_cleanup(handle)
    }

    @Test("SQLite (through GRDB) opens a WAL database, writes in a transaction and reads back")
    func sqliteWAL() throws {
        try withTemporaryDirectory { dir in
            var config = Configuration()
            config.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
            let path = dir.appendingPathComponent("smoke.sqlite").path
            let pool = try DatabasePool(path: path, configuration: config)
            try pool.write { db in
                try db.execute(sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
                for i in 0..<100 { try db.execute(sql: "INSERT INTO t (v) VALUES (?)", arguments: ["v\(i)"]) }
            }
            let (count, mode) = try pool.read { db in
                (try Int.fetchOne(db, sql: "SELECT count(*) FROM t"),
                 try String.fetchOne(db, sql: "PRAGMA journal_mode"))
            }
            #expect(count == 100)
            #expect(mode == "wal")
        }
    }

    @Test("swift-crypto computes the FIPS 180-2 SHA-256 test vector for \"abc\"")
    func sha256() {
        let digest = SHA256.hash(data: Array("abc".utf8)).map { String(format: "%02x", $0) }.joined()
        #expect(digest == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test("librdkafka's in-process mock cluster accepts a produce and serves it to a group consumer")
    func rdkafkaMockRoundTrip() throws {
        let cluster = try MockCluster(brokers: 1)
        defer { cluster.close() }
        try cluster.createTopic("smoke", partitions: 1)
        #expect(cluster.bootstrapServers.hasPrefix("127.0.0.1:"))
        let sent = try RawKafka.produce(bootstrap: cluster.bootstrapServers, topic: "smoke", values: ["hello"])
        #expect(sent == 1)
        let consumer = try RawKafka.GroupConsumer(bootstrap: cluster.bootstrapServers, group: "g", topic: "smoke")
        defer { consumer.close() }
        let records = try consumer.consume(count: 1, timeout: 30)
        #expect(records.map(\.value) == ["hello"])
        #expect(records.first?.offset == 0)
    }
}
