import Foundation
import Synchronization

/// Liveness and readiness of an engine, as `/healthz` and `/ready` report them.
///
/// The poll thread beats ``beat()`` once per loop; the object-store wrapper
/// (``InstrumentedObjectStore``) reports every request's outcome; the engine sets the assigned
/// partition count and a fatal error. Readers (the HTTP server, any thread) evaluate
/// ``liveness(now:)`` and ``readiness(now:)``.
public final class EngineHealth: Sendable {
    /// An answer of `/healthz` or `/ready`: ok, and why not.
    public struct Status: Sendable, Equatable {
        /// Whether the check passes (HTTP 200).
        public var ok: Bool
        /// The failing conditions (empty when ok), one short sentence each.
        public var failing: [String]
        /// A one-line body for the HTTP answer.
        public var body: String { ok ? "ok\n" : failing.joined(separator: "; ") + "\n" }
    }

    /// How long the poll loop may go without a beat before `/healthz` fails.
    public let stallLimit: Duration
    /// How long a successful object-store request counts as "reachable" without a newer one.
    public let storeCheckValidity: Duration
    private let clock = ContinuousClock()
    private let start: ContinuousClock.Instant
    /// Nanoseconds since `start` of the last beat.
    private let lastBeat = Atomic<Int64>(0)
    private let assigned = Atomic<Int>(0)
    private let store = Mutex<StoreState>(StoreState())
    private let fatal = Mutex<String?>(nil)

    private struct StoreState {
        var reachable: Bool?
        var at: ContinuousClock.Instant?
        var detail = ""
    }

    /// - Parameters:
    ///   - stallLimit: `/healthz` fails when the poll loop has not run for this long.
    ///   - storeCheckValidity: a store request older than this is due to be checked again
    ///     (``storeCheckDue(now:)``).
    public init(stallLimit: Duration = .seconds(30), storeCheckValidity: Duration = .seconds(60)) {
        self.stallLimit = stallLimit
        self.storeCheckValidity = storeCheckValidity
        start = clock.now
    }

    private func elapsed(_ now: ContinuousClock.Instant) -> Int64 {
        EngineMetrics.nanoseconds(now - start)
    }

    /// The poll loop ran (poll thread, once per loop: one relaxed atomic store).
    public func beat(now: ContinuousClock.Instant = .now) { lastBeat.store(elapsed(now), ordering: .relaxed) }

    /// The number of partitions assigned to the engine.
    public func setAssigned(_ n: Int) { assigned.store(n, ordering: .relaxed) }

    /// A fatal error stopped (or is stopping) the engine.
    public func setFatal(_ why: String) { fatal.withLock { $0 = $0 ?? why } }

    /// The outcome of an object-store request or check: `reachable` false when the store did
    /// not answer (timeouts, 5xx, throttling after retries), with the error.
    public func storeOutcome(reachable: Bool, detail: String = "", now: ContinuousClock.Instant = .now) {
        store.withLock { $0 = StoreState(reachable: reachable, at: now, detail: detail) }
    }

    /// Whether the engine should check the store now: no request yet, the last one failed, or
    /// it is older than ``storeCheckValidity``.
    public func storeCheckDue(now: ContinuousClock.Instant = .now) -> Bool {
        store.withLock { s in
            guard s.reachable == true, let at = s.at else { return true }
            return now - at >= storeCheckValidity
        }
    }

    /// `/healthz`: the poll loop ran within ``stallLimit`` (counted from creation before the
    /// first beat, so start-up has that long).
    public func liveness(now: ContinuousClock.Instant = .now) -> Status {
        let since = Duration.nanoseconds(elapsed(now) - lastBeat.load(ordering: .relaxed))
        if since > stallLimit {
            let secs = Int(since.components.seconds)
            return Status(ok: false, failing: ["poll loop has not run for \(secs) s (limit \(stallLimit.components.seconds) s)"])
        }
        return Status(ok: true, failing: [])
    }

    /// `/ready`: no fatal error, at least one partition assigned, and the object store answered
    /// the last request or check.
    public func readiness() -> Status {
        var failing: [String] = []
        if let why = fatal.withLock({ $0 }) { failing.append("fatal error: \(why)") }
        if assigned.load(ordering: .relaxed) == 0 { failing.append("no partition assigned") }
        let s = store.withLock { $0 }
        switch s.reachable {
        case nil: failing.append("object store not checked yet")
        case false?: failing.append("object store unreachable: \(s.detail)")
        case true?: break
        }
        return Status(ok: failing.isEmpty, failing: failing)
    }
}
