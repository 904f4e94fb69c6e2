import Foundation
import Parquet
import Testing
import TestSupport

/// Apache Spark's vectorized Parquet reader as a peer: tools/spark_check.py reads each file in
/// one local Spark session and compares every row and type with pyarrow's reading.
@Suite("Interop with Spark")
struct SparkInteropTests {
    /// A Java runtime for Spark: JAVA_HOME, `java` on PATH, or Debian's OpenJDK 17.
    static func javaAvailable() -> Bool {
        if let home = ProcessInfo.processInfo.environment["JAVA_HOME"],
            FileManager.default.isExecutableFile(atPath: home + "/bin/java")
        {
            return true
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        if path.split(separator: ":").contains(where: { FileManager.default.isExecutableFile(atPath: "\($0)/java") }) {
            return true
        }
        return FileManager.default.isExecutableFile(atPath: "/usr/lib/jvm/java-17-openjdk-amd64/bin/java")
    }

    @Test("Spark's vectorized reader reads every profile x codec file exactly as pyarrow does")
    func sparkReadsEveryProfileAndCodec() throws {
        // CI installs Java and pyspark (tools/install-deps): missing them is a failure, not a skip.
        try #require(Self.javaAvailable(), "no Java runtime for Spark: run tools/install-deps (openjdk-17-jre-headless)")
        let probe = try runProcess("python3", ["-c", "import pyspark"], timeout: 60)
        try #require(probe.status == 0, "pyspark is not installed: run tools/install-deps (\(probe.stderr))")

        try withTemporaryDirectory { dir in
            var paths: [String] = []
            for profile in ParquetProfile.allCases {
                for (compression, name) in ProfileCodecTests.codecs {
                    let path = dir.appendingPathComponent("\(profile)-\(name).parquet").path
                    _ = try ProfileCodecTests.writeEngineFile(
                        path: path, profile: profile, compression: compression, rows: 2_000, seed: 41)
                    paths.append(path)
                }
            }
            let started = Date()
            let result = try runPythonTool("spark_check.py", paths, timeout: 240)
            let seconds = Date().timeIntervalSince(started)
            #expect(result.status == 0, "spark_check.py failed (status \(result.status)):\n\(result.stdout)\n\(result.stderr)")
            // One "ok" line per file, naming it: every file was read, none silently left out.
            let okLines = result.stdout.split(separator: "\n").filter { $0.hasPrefix("ok ") }
            #expect(okLines.count == paths.count, "\(result.stdout)")
            for path in paths {
                #expect(okLines.contains { $0.hasPrefix("ok \(path):") }, "no ok line for \(path)")
            }
            #expect(okLines.allSatisfy { $0.contains("2000 rows") }, "\(result.stdout)")
            print("spark_check.py: \(paths.count) files in \(Int(seconds)) s")
        }
    }
}
