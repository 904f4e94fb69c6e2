import FileProducer
import Manifest
import Pipeline
import Testing

/// A model of one partition's world: Kafka (committed offset, N records), the object store
/// (objects by start offset) and two engines, each with its own manifest and batch size. The
/// real ``PartitionMachine`` and ``BatchStateMachine`` decide everything; the model only answers
/// their steps (as `BatchExecutor` does) and plays the engine's poll thread (position, probe,
/// cuts at its manifest's ranges). Random interleavings of staging, uploads, kill -9, restart,
/// etl-recover and lost staged files must never deliver an offset twice nor commit past an
/// offset that is not delivered, and a final run to completion delivers every offset.
struct PartitionModel {
    struct Object: Equatable { var end: Int64; var sha: String }
    struct Batch { var id: Int64; var start: Int64; var end: Int64; var state: BatchState; var sha: String; var file = true }
    struct Engine {
        var batchSize: Int64
        var manifest: [Batch] = []
        var running = false
        var position: Int64 = 0
        var needsProbe = true
        /// The manifest's live ranges at or after the position when the partition was assigned
        /// (the engine's `knownRanges`): skipped while reading, a batch is cut before each.
        var known: [ClosedRange<Int64>] = []
        var machine = PartitionMachine()
        var live: [Batch] { manifest.filter { !$0.state.isFinal }.sorted { $0.start < $1.start } }
    }

    let records: Int64
    var committed: Int64?
    var objects: [Int64: Object] = [:]
    var engines: [Engine]
    var nextID: Int64 = 1
    var violations: [String] = []

    init(records: Int64, batchSizes: [Int64]) {
        self.records = records
        engines = batchSizes.map { Engine(batchSize: $0) }
    }

    // MARK: The poll thread

    mutating func restart(_ e: Int) {
        engines[e].running = true
        engines[e].machine = PartitionMachine()
        engines[e].machine.apply(.committed(committed))
        engines[e].position = committed ?? 0
        engines[e].needsProbe = true
        captureKnown(e)
    }

    mutating func captureKnown(_ e: Int) {
        let p = engines[e].position
        engines[e].known = engines[e].live.filter { $0.end >= p }.map { $0.start...$0.end }
    }

    mutating func crash(_ e: Int) { engines[e].running = false }

    /// A rebalance hands the partition back to a running engine: the poll thread restarts at
    /// the committed offset with the manifest's live ranges to skip, and the machine is told
    /// (the engine keeps its machine across assignments).
    mutating func reassign(_ e: Int) {
        guard engines[e].running else { return }
        engines[e].machine.apply(.assigned(committed: committed))
        engines[e].position = committed ?? 0
        engines[e].needsProbe = true
        captureKnown(e)
    }

    /// Reads and stages one batch from the engine's position, as `Engine.handle` does.
    mutating func stage(_ e: Int) {
        guard engines[e].running else { return }
        var p = engines[e].position
        // Skip the known ranges, and probe at the chain position.
        while true {
            if let i = engines[e].known.firstIndex(where: { $0.contains(p) }) {
                p = engines[e].known.remove(at: i).upperBound + 1
                engines[e].needsProbe = true
                continue
            }
            if engines[e].needsProbe, let o = objects[p] {
                engines[e].machine.apply(.objectFound(start: p, end: o.end))
                p = o.end + 1
                continue
            }
            break
        }
        engines[e].position = p
        guard p < records else { return }
        var end = min(p + engines[e].batchSize - 1, records - 1)
        if let next = engines[e].known.filter({ $0.lowerBound > p }).map(\.lowerBound).min() { end = min(end, next - 1) }
        if let clash = engines[e].live.first(where: { $0.start <= end && p <= $0.end }) {
            violations.append("engine \(e) staged \(p)...\(end) over its live batch \(clash.start)...\(clash.end) (the manifest refuses it)")
            return
        }
        engines[e].needsProbe = false
        let id = nextID
        nextID += 1
        var b = Batch(id: id, start: p, end: end, state: .staged, sha: "e\(e)-b\(id)")
        // A batch sealed after a break, before the re-seek, follows the broken range.
        if let broken = engines[e].machine.brokenAt, end >= broken { b.state = .abandoned; b.file = false }
        engines[e].manifest.append(b)
        engines[e].position = end + 1
    }

    // MARK: Upload workers and etl-recover

    /// The upload scheduler's next step for the engine's first live batch.
    mutating func upload(_ e: Int) {
        guard engines[e].running, let b = engines[e].live.first else { return }
        var m = engines[e].machine
        let decision = m.decide(start: b.start, end: b.end, state: b.state)
        engines[e].machine = m
        switch decision {
        case .readCommitted: engines[e].machine.apply(.committed(committed))
        case .wait: return
        case .abandon: setState(e, b.id, .abandoned, dropFile: true)
        case .drive(let covered):
            let outcome = drive(e, b, covered: covered)
            if let reseek = engines[e].machine.apply(.finished(start: b.start, end: b.end, outcome: outcome)) {
                for f in engines[e].live where f.start > b.start && f.state == .staged { setState(e, f.id, .abandoned, dropFile: true) }
                engines[e].position = reseek
                engines[e].needsProbe = true
                engines[e].known.removeAll { $0.lowerBound >= reseek || $0.contains(reseek) }
                engines[e].machine.apply(.reread(from: reseek))
            }
        }
    }

    /// `etl-recover` with the engine down: every live batch in offset order, as ``Reconciler``.
    mutating func recover(_ e: Int) {
        guard !engines[e].running else { return }
        var machine = PartitionMachine()
        machine.apply(.committed(committed))
        for b in engines[e].live {
            switch machine.decide(start: b.start, end: b.end, state: b.state) {
            case .readCommitted, .wait: continue
            case .abandon: setState(e, b.id, .abandoned, dropFile: true)
            case .drive(let covered):
                let outcome = drive(e, b, covered: covered)
                machine.apply(.finished(start: b.start, end: b.end, outcome: outcome))
            }
        }
    }

    mutating func loseFile(_ e: Int, pick: Int) {
        let staged = engines[e].live.filter { $0.state == .staged }
        guard !staged.isEmpty else { return }
        let id = staged[pick % staged.count].id
        if let i = engines[e].manifest.firstIndex(where: { $0.id == id }) { engines[e].manifest[i].file = false }
    }

    /// Runs the real batch machine, answering its steps from the model.
    mutating func drive(_ e: Int, _ b: Batch, covered: Int64?) -> BatchStateMachine.Outcome {
        var m = BatchStateMachine(batch: .init(id: b.id, state: b.state, startOffset: b.start, endOffset: b.end,
                                               sha256: b.sha, uploadID: nil, hasRejected: false, singlePut: true),
                                  coveredThrough: covered)
        var step = m.start()
        for _ in 0..<50 {
            let observation: BatchStateMachine.Observation
            switch step {
            case .finished(let outcome): return outcome
            case .headObject:
                observation = .head(objects[b.start].map { .init(sha256: $0.sha, endOffset: $0.end, etag: "x") })
            case .verifyStagedFiles:
                let file = engines[e].manifest.first { $0.id == b.id }?.file ?? false
                observation = .stagedFiles(file ? .ok : .missing(path: "b\(b.id)"))
            case .putObject:
                if objects[b.start] != nil {
                    observation = .alreadyExists
                } else {
                    objects[b.start] = Object(end: b.end, sha: b.sha)
                    checkNoOverlap()
                    observation = .completed(etag: "x")
                }
            case .readCommittedOffset: observation = .committedOffset(committed, owned: true)
            case .commitOffset(let o):
                committed = o
                checkCommitted()
                observation = .done
            case .record(let to, _, _, _):
                setState(e, b.id, to, dropFile: false)
                observation = .done
            case .quarantineStagedFiles, .deleteStagedFiles:
                if let i = engines[e].manifest.firstIndex(where: { $0.id == b.id }) { engines[e].manifest[i].file = false }
                observation = .done
            case .putRejected, .deleteRejected, .abortUpload, .createUpload, .listParts, .uploadParts, .completeUpload:
                observation = .done   // single PUTs and no dead letters in this model
            }
            step = m.next(observation)
        }
        violations.append("batch machine did not finish for batch \(b.id)")
        return .needsAttention("loop")
    }

    mutating func setState(_ e: Int, _ id: Int64, _ to: BatchState, dropFile: Bool) {
        guard let i = engines[e].manifest.firstIndex(where: { $0.id == id }) else { return }
        engines[e].manifest[i].state = to
        if dropFile { engines[e].manifest[i].file = false }
    }

    // MARK: Invariants

    /// No offset is in two objects.
    mutating func checkNoOverlap() {
        let sorted = objects.sorted { $0.key < $1.key }
        for (a, b) in zip(sorted, sorted.dropFirst()) where b.key <= a.value.end {
            violations.append("objects at \(a.key)...\(a.value.end) and \(b.key)...\(b.value.end) overlap")
        }
    }

    /// Every offset below Kafka's committed offset is in an object.
    mutating func checkCommitted() {
        guard let c = committed else { return }
        var covered: Int64 = 0
        for (start, o) in objects.sorted(by: { $0.key < $1.key }) where start <= covered { covered = max(covered, o.end + 1) }
        if covered < c { violations.append("committed \(c) but offsets from \(covered) are in no object") }
    }

    /// Offsets in no object, or in more than one.
    func coverage() -> (missing: [Int64], twice: [Int64]) {
        var count = [Int](repeating: 0, count: Int(records))
        for (start, o) in objects { for x in start...o.end where x < records { count[Int(x)] += 1 } }
        return ((0..<records).filter { count[Int($0)] == 0 }, (0..<records).filter { count[Int($0)] > 1 })
    }
}

@Suite("partition machine")
struct PartitionMachineTests {
    @Test("model: random crashes, restarts, etl-recover, a second engine with other cuts and lost files never deliver an offset twice or commit past a hole",
          arguments: 0..<300)
    func model(seed: Int) {
        var rng = SplitMix64(seed: UInt64(seed) &* 7919 &+ 1)   // deterministic: a failing seed replays
        var w = PartitionModel(records: 60, batchSizes: [10, 7])
        w.restart(0)
        for _ in 0..<120 {
            let e = Int.random(in: 0...1, using: &rng)
            switch Int.random(in: 0..<100, using: &rng) {
            case 0..<35: w.stage(e)
            case 35..<70: w.upload(e)
            case 70..<76: w.crash(e)
            case 76..<80: w.reassign(e)
            case 80..<88: w.restart(e)
            case 88..<94: w.recover(e)
            default: w.loseFile(e, pick: Int.random(in: 0..<8, using: &rng))
            }
            if !w.violations.isEmpty { break }
        }
        // Then one engine runs to completion (the other stays down, as after kill -9).
        let last = Int.random(in: 0...1, using: &rng)
        w.crash(1 - last)
        w.restart(last)
        for _ in 0..<2000 where w.violations.isEmpty {
            w.stage(last)
            w.upload(last)
            if w.committed == w.records { break }
        }
        #expect(w.violations.isEmpty, "seed \(seed): \(w.violations)")
        let (missing, twice) = w.coverage()
        #expect(twice.isEmpty, "seed \(seed): offsets in two objects: \(twice)")
        #expect(missing.isEmpty, "seed \(seed): offsets in no object: \(missing)")
        #expect(w.committed == w.records, "seed \(seed): committed \(String(describing: w.committed)) of \(w.records)")
    }

    @Test("etl-recover after a second engine delivered the partition with other cuts supersedes, never uploads (issue 18 case 1)")
    func recoverAfterOtherEngine() {
        var m = PartitionMachine()
        m.apply(.committed(5000))
        // A's first batch: HEAD finds B's object [0, 699]; behind the frontier it may not create.
        #expect(m.decide(start: 0, end: 999, state: .staged) == .drive(coveredThrough: 5000))
        m.apply(.finished(start: 0, end: 999, outcome: .superseded(resumeAt: 5000)))
        // B holds every offset below 5000: A's next batch may only find an object of its own.
        #expect(m.decide(start: 1000, end: 1999, state: .staged) == .drive(coveredThrough: 5000))
        m.apply(.finished(start: 1000, end: 1999, outcome: .superseded(resumeAt: 5000)))
        // A batch reaching past the break follows offsets that are read again.
        if case .abandon = m.decide(start: 4000, end: 5999, state: .staged) {} else { Issue.record("must be abandoned") }
    }

    @Test("after an abandoned batch no later batch is uploaded or committed (issue 18 case 2)")
    func abandonedBreaksChain() {
        var m = PartitionMachine()
        #expect(m.decide(start: 0, end: 999, state: .staged) == .readCommitted)
        m.apply(.committed(nil))
        #expect(m.decide(start: 0, end: 999, state: .staged) == .drive(coveredThrough: nil))
        #expect(m.apply(.finished(start: 0, end: 999, outcome: .abandoned(reason: "staged file missing"))) == 0)
        if case .abandon = m.decide(start: 1000, end: 1999, state: .staged) {} else { Issue.record("a follower must be abandoned") }
        // An uploaded follower (its object exists) is never abandoned, and never committed past the hole.
        #expect(m.decide(start: 2000, end: 2999, state: .uploaded) == .wait(missing: 0...1999))
        // The owner re-reads from 0: its new batch at the frontier may be uploaded again.
        m.apply(.reread(from: 0))
        #expect(m.decide(start: 0, end: 499, state: .staged) == .drive(coveredThrough: nil))
        m.apply(.finished(start: 0, end: 499, outcome: .committed))
        #expect(m.frontier == 500)
        #expect(m.decide(start: 1000, end: 1999, state: .staged) == .wait(missing: 500...999))
    }

    @Test("a batch that finishes while the frontier is behind it joins the chain once the frontier reaches it")
    func outOfOrderDelivery() {
        // Found by the transactional crash scenario: batch [1505, 2006] was in flight across the
        // assignment and finished before [1003, 1504] (UPLOADED before the crash) was committed;
        // a machine that dropped the early news left [2007, ...] waiting forever.
        var m = PartitionMachine()
        m.apply(.assigned(committed: 1003))
        m.apply(.finished(start: 1505, end: 2006, outcome: .committed))
        #expect(m.frontier == 1003)
        #expect(m.decide(start: 2007, end: 2508, state: .staged) == .wait(missing: 1003...2006))
        m.apply(.finished(start: 1003, end: 1504, outcome: .committed))
        #expect(m.frontier == 2007)
        #expect(m.decide(start: 2007, end: 2508, state: .staged) == .drive(coveredThrough: nil))
    }

    @Test("a reassignment keeps the frontier (never moves back) and heals a break")
    func reassignmentKeepsFrontier() {
        var m = PartitionMachine()
        m.apply(.committed(1003))
        m.apply(.finished(start: 1003, end: 1504, outcome: .uploadedNotOwned))
        m.apply(.finished(start: 1505, end: 2006, outcome: .abandoned(reason: "lost")))
        m.apply(.assigned(committed: 1003))
        #expect(m.frontier == 1505)
        #expect(m.brokenAt == nil)
        #expect(m.decide(start: 1505, end: 1999, state: .staged) == .drive(coveredThrough: nil))
    }
}
