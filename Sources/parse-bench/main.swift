// parse-bench: records per second of one core for each input format's parser (`make
// bench-parse`). Inputs are generated in memory with a fixed seed; each format is parsed
// `--records` times per run, best of `--runs`, on this thread only. Not a test.
//
//   parse-bench [--records N] [--runs R] [--json]
//
// Formats: seed text (the generator's line), seed JSON (JSONSerialization, as before issue 20),
// configured JSON mapping (~300-byte application-log JSON: 7 typed fields, the rest collected
// into attributes), regex (nginx combined format, 7 typed fields), raw.
import Foundation
import Pipeline
import TidemarkConfig

#if canImport(Glibc)
import Glibc
#endif

var records = 1_000_000
var runs = 3
var jsonOutput = false
var it = CommandLine.arguments.dropFirst().makeIterator()
while let a = it.next() {
    switch a {
    case "--records": records = Int(it.next() ?? "") ?? records
    case "--runs": runs = Int(it.next() ?? "") ?? runs
    case "--json": jsonOutput = true
    default:
        FileHandle.standardError.write(Data("usage: parse-bench [--records N] [--runs R] [--json]\n".utf8))
        exit(2)
    }
}

/// SplitMix64: the same inputs on every run.
struct Rng {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

/// 4,096 distinct lines per format, cycled: enough variety for the branch predictor, small
/// enough to stay in cache as Kafka's fetched message sets do.
func lines(_ make: (inout Rng, Int) -> String) -> [[UInt8]] {
    var rng = Rng(state: 42)
    return (0..<4096).map { Array(make(&rng, $0).utf8) }
}

let levels = ["INFO", "DEBUG", "WARN", "ERROR"]
let words = ["user", "login", "request", "cache", "miss", "db", "query", "timeout", "retry", "ok", "payment", "session"]
func iso(_ rng: inout Rng, _ i: Int) -> String {
    String(format: "2026-12-%02dT%02d:%02d:%02d.%03dZ", 1 + i % 28, rng.below(24), rng.below(60), rng.below(60), rng.below(1000))
}
func sentence(_ rng: inout Rng) -> String { (0..<(5 + rng.below(8))).map { _ in words[rng.below(words.count)] }.joined(separator: " ") }

let seedText = lines { rng, i in "\(1_000_000 + i) \(iso(&rng, i)) \(levels[rng.below(4)]) \(sentence(&rng)) id=\(rng.below(100_000))" }
let seedJSON = lines { rng, i in
    #"{"serial":\#(1_000_000 + i),"ts":"\#(iso(&rng, i))","level":"\#(levels[rng.below(4)])","message":"\#(sentence(&rng))","host":"web-\#(rng.below(40))"}"#
}
let appJSON = lines { rng, i in
    let path = "/api/v1/\(words[rng.below(words.count)])/\(rng.below(100_000))"
    return #"{"@timestamp":"\#(iso(&rng, i))","level":"\#(levels[rng.below(4)].lowercased())","msg":"GET \#(path) completed","#
        + #""service":"api-gateway","host":"ip-10-0-\#(rng.below(256))-\#(rng.below(256))","#
        + #""http":{"method":"GET","path":"\#(path)","status":\#([200, 200, 200, 404, 500][rng.below(5)]),"latency_ms":\#(Double(rng.below(100_000)) / 100),"bytes":\#(rng.below(50_000))},"#
        + #""trace_id":"\#(String(rng.next(), radix: 16))\#(String(rng.next(), radix: 16))","user":{"id":\#(rng.below(1_000_000)),"tier":"free"}}"#
}
let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
let nginx = lines { rng, i in
    let local = String(format: "%02d/%@/2026:%02d:%02d:%02d +0100", 1 + i % 28, months[i % 12], rng.below(24), rng.below(60), rng.below(60))
    return "10.0.\(rng.below(256)).\(rng.below(256)) - - [\(local)] \"GET /api/v1/\(words[rng.below(words.count)])/\(rng.below(100_000)) HTTP/1.1\" "
        + "\([200, 200, 304, 404][rng.below(4)]) \(rng.below(50_000)) \"-\" \"Mozilla/5.0 (X11; Linux x86_64) curl/8.\(rng.below(10))\""
}

func config(_ toml: String) -> RecordParser {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("parse-bench-\(getpid()).toml").path
    let text = "[kafka]\nbrokers = \"b:9092\"\ntopics = [\"t\"]\n[sink]\nurl = \"file:///tmp/x\"\n" + toml
    do {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { unlink(path) }
        let c = try EngineConfig.load(path: path, environment: [:])
        return try RecordParser(input: c.input, schema: c.schema)
    } catch {
        FileHandle.standardError.write(Data("parse-bench: \(error)\n".utf8))
        exit(1)
    }
}

let jsonMapping = config(#"""
    [input]
    format = "json"
    [schema]
    event_time_field = "time"
    [[schema.fields]]
    name = "time"
    source = "@timestamp"
    type = "timestamp"
    required = true
    [[schema.fields]]
    name = "level"
    [[schema.fields]]
    name = "message"
    source = "msg"
    [[schema.fields]]
    name = "service"
    [[schema.fields]]
    name = "status"
    source = "http.status"
    type = "int64"
    [[schema.fields]]
    name = "latency_ms"
    source = "http.latency_ms"
    type = "double"
    [[schema.fields]]
    name = "trace_id"
    """#)
// The nginx example users are pointed to (examples/nginx-access.toml), as the engine's
// end-to-end test reads it too.
let regexMapping: RecordParser = {
    let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("examples/nginx-access.toml")
    guard let text = try? String(contentsOf: example, encoding: .utf8) else {
        FileHandle.standardError.write("parse-bench: cannot read \(example.path)\n".data(using: .utf8)!)
        exit(1)
    }
    return config(text)
}()
let seed = config("")
let rawParser = config("[input]\nformat = \"raw\"\n")

/// Records per second (best run) and accepted count of `parser` over `input`, cycled.
func measure(_ name: String, _ parser: RecordParser, _ input: [[UInt8]], records: Int, runs: Int) -> (Double, Double, Int) {
    let buffers = input.map { line -> UnsafeMutableRawBufferPointer in
        let b = UnsafeMutableRawBufferPointer.allocate(byteCount: line.count, alignment: 8)
        b.copyBytes(from: line)
        return b
    }
    defer { buffers.forEach { $0.deallocate() } }
    let bytesPerCycle = input.reduce(0) { $0 + $1.count }
    var best = Double.infinity
    var accepted = 0
    var checksum: Int64 = 0
    for _ in 0..<runs {
        accepted = 0
        let start = ContinuousClock.now
        for i in 0..<records {
            if case .success(let r) = parser.parse(UnsafeRawBufferPointer(buffers[i & 4095])) {
                accepted += 1
                checksum &+= r.eventTimeMicros ?? 1    // uses the result, so nothing is optimised away
            }
        }
        let d = ContinuousClock.now - start
        best = min(best, Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
    }
    if checksum == 42 { print("") }
    let rate = Double(records) / best
    let mbps = Double(bytesPerCycle) / 4096 * rate / 1e6
    return (rate, mbps, accepted)
}

let cases: [(String, RecordParser, [[UInt8]])] = [
    ("seed text", seed, seedText),
    ("seed JSON (JSONSerialization)", seed, seedJSON),
    ("configured JSON mapping", jsonMapping, appJSON),
    ("regex (nginx combined)", regexMapping, nginx),
    ("raw", rawParser, appJSON),
]
if !jsonOutput {
    print("parse-bench: \(records) records per run, best of \(runs), one thread")
    print("| format | records/s | MB/s | bytes/record | accepted |")
    print("| --- | ---: | ---: | ---: | ---: |")
}
for (name, parser, input) in cases {
    // Regex and JSONSerialization are far slower: a tenth of the records keeps the run short.
    let n = name.hasPrefix("regex") || name.hasPrefix("seed JSON") ? max(1, records / 10) : records
    let (rate, mbps, accepted) = measure(name, parser, input, records: n, runs: runs)
    let avg = Double(input.reduce(0) { $0 + $1.count }) / Double(input.count)
    if jsonOutput {
        print(#"{"format":"\#(name)","records":\#(n),"records_per_s":\#(Int(rate)),"mb_per_s":\#(String(format: "%.1f", mbps)),"bytes_per_record":\#(Int(avg)),"accepted":\#(accepted)}"#)
    } else {
        print("| \(name) | \(Int(rate).formatted()) | \(String(format: "%.1f", mbps)) | \(Int(avg)) | \(accepted)/\(n) |")
    }
    if accepted != n {
        FileHandle.standardError.write(Data("parse-bench: \(name): only \(accepted) of \(n) records parsed\n".utf8))
        exit(1)
    }
}
