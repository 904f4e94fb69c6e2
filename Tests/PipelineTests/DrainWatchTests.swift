@testable import Pipeline
import Testing

/// The end-of-partition cut of `--until-idle` (DrainWatch), fed 50 ms snapshots as the engine does.
@Suite("DrainWatch: --until-idle's end-of-partition cut")
struct DrainWatchTests {
    let t0 = ContinuousClock.now

    /// One snapshot `ms` after t0; true when the watch says seal.
    func snapshot(_ w: inout DrainWatch, atEnd: Bool = true, offset: Int64, ms: Int) -> Bool {
        w.observe(atEnd: atEnd, lastOffset: offset, now: t0 + .milliseconds(ms))
    }

    @Test("a partition at its end with no record read seals once 250 ms have passed, not before")
    func sealsAfterQuiet() {
        var w = DrainWatch()
        let sealedAt = stride(from: 0, through: 400, by: 50).filter { snapshot(&w, offset: 99, ms: $0) }
        #expect(sealedAt == [250])
    }

    @Test("a partition reported at its end in every snapshot but read between them is never sealed")
    func recordsBetweenSnapshotsKeepItOpen() {
        // What the engine sees of a partition written every few milliseconds beside others:
        // at its end in every 50 ms snapshot, its last offset a little further each time.
        var w = DrainWatch()
        var offset: Int64 = 0
        var sealedAt: [Int] = []
        for ms in stride(from: 0, through: 5_000, by: 50) {
            offset += 60
            if snapshot(&w, offset: offset, ms: ms) { sealedAt.append(ms) }
        }
        #expect(sealedAt.isEmpty, "sealed while still being read")
        // The writes stop: sealed 250 ms after the first snapshot that saw the final offset again.
        let after = stride(from: 5_050, through: 5_400, by: 50).filter { snapshot(&w, offset: offset, ms: $0) }
        #expect(after == [5_250])
    }

    @Test("a snapshot not at the end restarts the quiet time")
    func notAtEndRestarts() {
        var w = DrainWatch()
        let seq: [(atEnd: Bool, ms: Int)] = [(true, 0), (true, 200), (false, 220), (true, 300), (true, 500), (true, 550)]
        let sealedAt = seq.filter { snapshot(&w, atEnd: $0.atEnd, offset: 5, ms: $0.ms) }.map(\.ms)
        #expect(sealedAt == [550])
    }

    @Test("a fresh watch (what seal() leaves for the next batch) does not inherit the quiet time")
    func freshAfterSeal() {
        var w = DrainWatch()
        let first = snapshot(&w, offset: 5, ms: 0)
        w = DrainWatch()
        let second = snapshot(&w, offset: 5, ms: 300)
        #expect(!first && !second)
        #expect(w.since == t0 + .milliseconds(300))
    }
}
