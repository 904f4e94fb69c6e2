#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// Named crash points of the commit protocol (docs/protocol.md, "Failure matrix").
///
/// `TIDEMARK_FAILPOINTS=name[,name...]` arms points; `name@N` fires on the Nth hit only. An
/// armed point kills the process at once with `_exit(137)`: no cleanup, no flush, like
/// `kill -9`. Compiled into release builds; an unarmed check is one relaxed atomic load.
public enum Failpoint: String, Sendable, CaseIterable {
    case afterStageWrite = "after_stage_write"
    case afterManifestStaged = "after_manifest_staged"
    case afterUploadCreate = "after_upload_create"
    case afterPartUpload = "after_part_upload"
    case beforeUploadComplete = "before_upload_complete"
    case afterUploadComplete = "after_upload_complete"
    case afterManifestUploaded = "after_manifest_uploaded"
    case beforeOffsetCommit = "before_offset_commit"
    case afterOffsetCommit = "after_offset_commit"
    case afterManifestCommitted = "after_manifest_committed"
}

/// The armed failpoints of this process.
public final class Failpoints: Sendable {
    /// The process-wide set, read from `TIDEMARK_FAILPOINTS` at first use.
    public static let shared: Failpoints = {
        let spec = getenv("TIDEMARK_FAILPOINTS").map { String(cString: $0) } ?? ""
        return (try? Failpoints(spec: spec)) ?? Failpoints(empty: ())
    }()

    private let armed: [Failpoint: Int]   // point -> hit number that fires (0 = every hit)
    private let anyArmed: Bool
    private let hits: Mutex<[Failpoint: Int]> = Mutex([:])

    /// An error naming an unknown failpoint in the specification.
    public struct SpecError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Parses `name[@N][,name[@N]...]`.
    public init(spec: String) throws {
        var armed: [Failpoint: Int] = [:]
        for item in spec.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            let parts = item.split(separator: "@", maxSplits: 1)
            guard let point = Failpoint(rawValue: String(parts[0])) else {
                throw SpecError(description: "unknown failpoint '\(parts[0])' in TIDEMARK_FAILPOINTS; known: "
                    + Failpoint.allCases.map(\.rawValue).joined(separator: ", "))
            }
            var n = 0
            if parts.count == 2 {
                guard let v = Int(parts[1]), v >= 1 else {
                    throw SpecError(description: "failpoint '\(item)': expected name@N with N >= 1")
                }
                n = v
            }
            armed[point] = n
        }
        self.armed = armed
        anyArmed = !armed.isEmpty
    }

    private init(empty: Void) {
        armed = [:]
        anyArmed = false
    }

    /// Whether `point` fires on this hit (counts the hit). Exposed for tests.
    public func shouldFire(_ point: Failpoint) -> Bool {
        guard anyArmed, let n = armed[point] else { return false }
        let count = hits.withLock { h -> Int in
            h[point, default: 0] += 1
            return h[point]!
        }
        return n == 0 || count == n
    }

    /// Dies with `_exit(137)` if `point` is armed for this hit.
    @inline(__always)
    public func hit(_ point: Failpoint) {
        guard anyArmed else { return }
        if shouldFire(point) {
            let msg = "tidemark: failpoint \(point.rawValue) fired, exiting\n"
            _ = msg.withCString { write(2, $0, strlen($0)) }
            _exit(137)
        }
    }
}
