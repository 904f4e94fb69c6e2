import Foundation
import Logging
import Manifest
import Synchronization
import TidemarkConfig

/// Manifest retention (docs/protocol.md, "Manifest retention"): every
/// ``EngineConfig/ManifestOptions/pruneInterval`` the poll thread starts one bounded pruning
/// pass on a background thread (never more than one at a time, never on the per-batch path).
extension Engine {
    /// Starts a pruning pass when one is due and none is running.
    func pruneManifestIfDue() {
        guard let interval = config.manifest.pruneInterval else { return }
        let now = ContinuousClock.now
        guard now - lastPrune >= interval,
              pruneRunning.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        lastPrune = now
        let manifest = self.manifest
        let logger = self.logger
        let metrics = self.metrics
        let retention = config.manifest.retention
        Thread.detachNewThread { [self] in
            defer { pruneRunning.store(false, ordering: .releasing) }
            Self.prunePass(manifest: manifest, retention: retention, logger: logger, metrics: metrics)
        }
    }

    /// One pass: final rows older than `retention`, at most ``pruneBatchLimit`` of them.
    static func prunePass(manifest: Manifest, retention: Duration, logger: Logger, metrics: EngineMetrics?) {
        let cutoff = Date().addingTimeInterval(-Double(retention.components.seconds) - Double(retention.components.attoseconds) / 1e18)
        let started = ContinuousClock.now
        do {
            let r = try manifest.prune(finalBefore: cutoff, limit: pruneBatchLimit)
            metrics?.manifestPruned(batches: r.batches)
            if r.batches > 0 || r.events > 0 {
                logger.info("manifest pruned", metadata: [
                    "batches": "\(r.batches)", "events": "\(r.events)", "updated_before": "\(cutoff)",
                    "more": "\(r.more)", "seconds": "\(ContinuousClock.now - started)"])
            }
        } catch {
            // Pruning is housekeeping: a failure (e.g. a full disk) leaves the rows for the next
            // pass and never stops the pipeline.
            logger.warning("manifest pruning failed; the rows stay until the next pass", metadata: ["error": "\(error)"])
        }
    }

    /// Batch rows one pruning pass deletes at most (one write transaction: a few tens of ms).
    static let pruneBatchLimit = 5_000

    /// Waits for a running pruning pass (before the manifest is closed).
    func waitForPrune() {
        while pruneRunning.load(ordering: .acquiring) { usleep(5_000) }
    }
}
