import Manifest

/// The partition half of the commit protocol (docs/protocol.md, "The partition machine") as a
/// pure state machine: it is told what happened to a partition's batches and answers what may
/// be done with the next one. No I/O, no clock. ``BatchStateMachine`` drives one batch; this
/// decides which batch may be driven, and whether it may create its object.
///
/// Both the engine (``UploadScheduler``) and `etl-recover` (``Reconciler``) ask it before every
/// batch, so no tool uploads past a range that is not delivered, and no tool commits an offset
/// whose records are not all in the store:
///
/// - The **frontier** is the first offset not known to be delivered: Kafka's committed offset,
///   moved forward only by objects that continue the chain from it (ours once uploaded, or
///   another writer's found by a HEAD).
/// - A batch **at** the frontier may create its object (the conditional create then settles a
///   race); after it, the frontier is its end + 1 and committing end + 1 is safe.
/// - A batch **behind** the frontier may not create its object (offsets it holds are delivered
///   by other objects); it only looks for an object of its own from before a crash.
/// - A batch **ahead** of the frontier waits: the offsets in between are not delivered. The
///   engine reads them (it cuts its batches at the manifest's ranges); `etl-recover` cannot, so
///   it leaves the batch for the engine.
/// - When a batch ends ABANDONED or SUPERSEDED, the chain is **broken** there: every later batch
///   of the partition follows a range that is read again, so it is abandoned, until the owner
///   re-reads from the break (``Event/reread(from:)``; the engine only).
public struct PartitionMachine: Sendable, Equatable {
    /// What the machine is told.
    public enum Event: Sendable, Equatable {
        /// Kafka's committed offset for the partition (nil: the group has none).
        case committed(Int64?)
        /// The partition was (re)assigned to this process with Kafka's committed offset: the
        /// owner reads from there, so every batch staged from now on is valid (a break is
        /// healed); what the machine learnt about delivered offsets stays (the frontier never
        /// moves back: batches this process drove before the assignment moved it).
        case assigned(committed: Int64?)
        /// A batch of the partition finished with `outcome`.
        case finished(start: Int64, end: Int64, outcome: BatchStateMachine.Outcome)
        /// An object holding `[start, end]` was found (the owner's probe at its chain position).
        case objectFound(start: Int64, end: Int64)
        /// Offsets `[start, end]` were deleted by retention before they were delivered and the
        /// operator chose to go on (`on_data_loss = report`): the chain continues past them.
        case lost(start: Int64, end: Int64)
        /// The owner re-seeked the partition to `from` after a break: batches staged from now on
        /// start there.
        case reread(from: Int64)
    }

    /// What may be done with a batch.
    public enum Decision: Sendable, Equatable {
        /// Kafka's committed offset is needed first: read it and report ``Event/committed(_:)``.
        case readCommitted
        /// Drive the batch through ``BatchStateMachine``. `coveredThrough` is nil when the batch
        /// starts at the frontier (it may create its object), else the frontier.
        case drive(coveredThrough: Int64?)
        /// Leave the batch as it is: offsets `missing` are not delivered yet.
        case wait(missing: ClosedRange<Int64>)
        /// Abandon the batch without uploading: it follows a range that is read again.
        case abandon(reason: String)
    }

    /// The first offset not known to be delivered (nil until Kafka's committed offset is known
    /// and, when the group has none, until the first batch defines it).
    public private(set) var frontier: Int64?
    /// Whether Kafka's committed offset has been read.
    public private(set) var committedKnown = false
    /// Where the chain broke (a batch ABANDONED or SUPERSEDED); nil when whole.
    public private(set) var brokenAt: Int64?
    /// Delivered ranges above the frontier, not yet joined to it (a batch that finished while the
    /// machine's frontier was behind it, e.g. one in flight across an assignment). They join the
    /// chain once the frontier reaches them.
    public private(set) var deliveredAhead: [ClosedRange<Int64>] = []

    public init() {}

    /// What may be done with the batch `[start, end]` in `state`. Batches must be asked about in
    /// offset order.
    public mutating func decide(start: Int64, end: Int64, state: BatchState) -> Decision {
        switch state {
        case .committed, .abandoned, .superseded:
            // Final: nothing to create or commit (the batch machine only tidies its files).
            return .drive(coveredThrough: nil)
        case .uploaded:
            // Its object exists: never abandoned (its records would be written twice), and its
            // end + 1 is committed only when the chain reaches it.
            guard committedKnown else { return .readCommitted }
            let f = frontier ?? start
            frontier = f
            if let broken = brokenAt, end >= broken { return .wait(missing: broken...max(broken, start - 1)) }
            if start <= f { return .drive(coveredThrough: nil) }
            return .wait(missing: f...(start - 1))
        case .staged, .uploading:
            break
        }
        if let broken = brokenAt, end >= broken {
            return .abandon(reason: "an earlier batch of the partition was abandoned or superseded: offsets from \(broken) are read again")
        }
        guard committedKnown else { return .readCommitted }
        // The group has no committed offset: the first batch asked about starts the chain (its
        // writer began at a chain position: the group's reset position, or an object's end + 1).
        let f = frontier ?? start
        frontier = f
        if start == f { return .drive(coveredThrough: nil) }
        if start < f { return .drive(coveredThrough: f) }
        return .wait(missing: f...(start - 1))
    }

    /// Tells the machine what happened. Returns the offset the owner must re-read from when the
    /// chain broke.
    @discardableResult
    public mutating func apply(_ event: Event) -> Int64? {
        switch event {
        case .committed(let c):
            committedKnown = true
            if let c { frontier = max(frontier ?? c, c) }
            joinDelivered()
            return nil
        case .assigned(let c):
            committedKnown = true
            if let c { frontier = max(frontier ?? c, c) }
            brokenAt = nil
            joinDelivered()
            return nil
        case let .objectFound(start, end), let .lost(start, end):
            delivered(start...end)
            return nil
        case .reread(let from):
            // The frontier never moves back: offsets below it are delivered, whoever reads them.
            if let b = brokenAt, from <= b { brokenAt = nil }
            return nil
        case let .finished(start, end, outcome):
            switch outcome {
            case .committed, .uploadedNotOwned:
                // Our object holds [start, end]: the chain continues after it if it continued
                // up to it; otherwise it is remembered until the chain reaches it.
                delivered(start...end)
                return nil
            case .abandoned:
                brokenAt = min(brokenAt ?? start, start)
                return start
            case .superseded(let resumeAt):
                // Another writer's objects hold [start, resumeAt - 1].
                if resumeAt > start { delivered(start...(resumeAt - 1)) }
                brokenAt = min(brokenAt ?? resumeAt, resumeAt)
                return resumeAt
            case .needsAttention:
                return nil
            }
        }
    }

    /// Offsets `r` are in the store: the frontier moves past them if it reaches them.
    private mutating func delivered(_ r: ClosedRange<Int64>) {
        if let f = frontier, r.lowerBound <= f {
            frontier = max(f, r.upperBound + 1)
        } else {
            deliveredAhead.append(r)
        }
        joinDelivered()
    }

    private mutating func joinDelivered() {
        guard var f = frontier else { return }
        var moved = true
        while moved {
            moved = false
            for r in deliveredAhead where r.lowerBound <= f && r.upperBound + 1 > f {
                f = r.upperBound + 1
                moved = true
            }
        }
        deliveredAhead.removeAll { $0.upperBound < f }
        frontier = f
    }
}
