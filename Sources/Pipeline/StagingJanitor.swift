import Foundation
import Logging
import Manifest

#if canImport(Glibc)
import Glibc
#endif

/// Tidies the staging directory after a crash, for the engine at start and for `etl-recover`
/// (one rule for both): `*.tmp` files (a batch being written when the process died: nothing
/// refers to them) and the leftover files of final batches (a crash between the manifest's
/// COMMITTED or SUPERSEDED and the delete) are deleted; sealed files no live manifest row refers
/// to are moved to `quarantine/` (never deleted: they are evidence).
public struct StagingJanitor: Sendable {
    /// What one pass found.
    public struct Plan: Sendable, Equatable {
        /// Paths to delete, with why.
        public var delete: [(path: String, why: String)] = []
        /// Paths to move to quarantine.
        public var quarantine: [String] = []
        public var isEmpty: Bool { delete.isEmpty && quarantine.isEmpty }
        public static func == (a: Plan, b: Plan) -> Bool {
            a.delete.map(\.path) == b.delete.map(\.path) && a.quarantine == b.quarantine
        }
    }

    public let directory: String
    public var quarantineDirectory: String { directory + "/quarantine" }

    public init(directory: String) { self.directory = directory }

    /// The staging files (`.tmp`, `.parquet`, `.jsonl`) outside quarantine, relative paths.
    public func files() -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: directory) else { return [] }
        return (walker.allObjects as? [String] ?? []).filter {
            !$0.hasPrefix("quarantine") && ($0.hasSuffix(".tmp") || $0.hasSuffix(".parquet") || $0.hasSuffix(".jsonl"))
        }
    }

    /// Decides what to do with `files` given the manifest's batches.
    public func plan(files: [String], batches: [BatchRecord]) -> Plan {
        let live = Set(batches.filter { !$0.state.isFinal }.flatMap { [$0.filePath, $0.rejectedPath].compactMap { $0 } })
        let done = Set(batches.filter { $0.state == .committed || $0.state == .superseded }
            .flatMap { [$0.filePath, $0.rejectedPath].compactMap { $0 } })
        var plan = Plan()
        for rel in files {
            let path = directory + "/" + rel
            if rel.hasSuffix(".tmp") {
                plan.delete.append((path, "partial file of a batch being written at the crash (its records are read again)"))
            } else if done.contains(path) {
                plan.delete.append((path, "staged file of a final batch"))
            } else if !live.contains(path) {
                plan.quarantine.append(path)
            }
        }
        return plan
    }

    /// Carries out `plan`, logging each quarantined file in the manifest's event log.
    public func apply(_ plan: Plan, manifest: Manifest) throws {
        for d in plan.delete { unlink(d.path) }
        guard !plan.quarantine.isEmpty else { return }
        try FileManager.default.createDirectory(atPath: quarantineDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        for path in plan.quarantine {
            _ = rename(path, quarantineDirectory + "/" + (path as NSString).lastPathComponent)
            try manifest.logEvent(batchID: nil, kind: "QUARANTINE", detail: "staged file with no live manifest row: \(path)")
        }
    }
}

extension Engine {
    /// Tidies the staging directory at start (``StagingJanitor``).
    func cleanStagingDirectory() throws {
        let janitor = StagingJanitor(directory: stagingDir)
        let files = janitor.files()
        // The usual start finds nothing to clean: do not read a manifest of many batches for it.
        guard !files.isEmpty else { return }
        let plan = janitor.plan(files: files, batches: try manifest.batches())
        try janitor.apply(plan, manifest: manifest)
        if !plan.quarantine.isEmpty {
            logger.warning("quarantined staged files with no manifest row",
                           metadata: ["count": "\(plan.quarantine.count)", "dir": "\(janitor.quarantineDirectory)"])
        }
    }
}
