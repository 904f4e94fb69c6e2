import Foundation
import Pipeline
import TestSupport
import Testing

/// `--version` on the executables that share the engine's version (issue 21, packaging): the .deb's
/// `make package-test` runs `etl-engine --version` in a clean Debian tree, and the package version
/// comes from the same `tidemarkVersion`.
@Suite("--version")
struct VersionTests {
    @Test("etl-engine, etl-audit and etl-recover print tidemarkVersion and exit 0 without a config",
          arguments: ["etl-engine", "etl-audit", "etl-recover"])
    func version(_ name: String) throws {
        let result = try runProcess(productsDirectory.appendingPathComponent(name).path, ["--version"], timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == tidemarkVersion)
    }
}
