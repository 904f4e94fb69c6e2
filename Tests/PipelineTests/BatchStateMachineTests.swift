import Manifest
import Pipeline
import Testing

/// A tiny deterministic world the machine's steps act on: one object key, its uploads, the
/// staged file, Kafka's committed offset. The test executor below answers each step from it,
/// the way `BatchExecutor` answers from the real manifest, store and consumer.
struct World {
    var object: BatchStateMachine.ObjectHead?
    var uploads: [String: [Int: String?]] = [:]      // upload id -> part -> checksum
    var nextUploadID = 1
    var stagedFile: BatchStateMachine.StagedFileCheck = .ok
    var committed: Int64?
    var owned = true
    var conditionalFailsWith: BatchStateMachine.Observation?   // .conflict once, etc.
    var commitRejected = false
    var rejectedObjectPresent = false
    var quarantined = false
    var stagedDeleted = false
    var manifestStates: [BatchState] = []
    var partsUploaded: [Int] = []
    var partCount = 3
    let ourSHA: String
    let ourEnd: Int64

    /// Runs a machine to its outcome, answering each step; returns the outcome and the steps taken.
    mutating func run(_ m: inout BatchStateMachine) -> (BatchStateMachine.Outcome, [BatchStateMachine.Step]) {
        var steps: [BatchStateMachine.Step] = []
        var step = m.start()
        for _ in 0..<100 {
            steps.append(step)
            if case .finished(let outcome) = step { return (outcome, steps) }
            step = m.next(answer(step))
        }
        Issue.record("machine did not finish: \(steps)")
        return (.abandoned(reason: "loop"), steps)
    }

    mutating func answer(_ step: BatchStateMachine.Step) -> BatchStateMachine.Observation {
        switch step {
        case .headObject: return .head(object)
        case .verifyStagedFiles: return .stagedFiles(stagedFile)
        case .putRejected: rejectedObjectPresent = true; return .done
        case .deleteRejected: rejectedObjectPresent = false; return .done
        case .putObject:
            if object != nil { return .alreadyExists }
            object = .init(sha256: ourSHA, endOffset: ourEnd, etag: "e-put")
            return .completed(etag: "e-put")
        case .createUpload:
            let id = "u\(nextUploadID)"
            nextUploadID += 1
            uploads[id] = [:]
            return .uploadCreated(id)
        case .listParts(let id): return .partsListed(uploads[id])
        case .uploadParts(let id, let skip):
            for p in 1...partCount where !skip.contains(p) {
                uploads[id, default: [:]][p] = "ck\(p)"
                partsUploaded.append(p)
            }
            return .done
        case .completeUpload(let id):
            if let forced = conditionalFailsWith {
                conditionalFailsWith = nil
                if forced == .conflict { uploads[id] = nil }
                return forced
            }
            guard uploads[id] != nil else { return .uploadGone }
            if object != nil { return .alreadyExists }
            uploads[id] = nil
            object = .init(sha256: ourSHA, endOffset: ourEnd, etag: "e-mpu")
            return .completed(etag: "e-mpu")
        case .abortUpload(let id): uploads[id] = nil; return .done
        case .readCommittedOffset: return .committedOffset(committed, owned: owned)
        case .commitOffset(let o):
            if commitRejected { return .commitRejected("ILLEGAL_GENERATION") }
            committed = o
            return .done
        case .record(let to, _, _, _): manifestStates.append(to); return .done
        case .quarantineStagedFiles: quarantined = true; return .done
        case .deleteStagedFiles: stagedDeleted = true; return .done
        case .finished: return .done
        }
    }
}

private func batch(_ state: BatchState, uploadID: String? = nil, rejected: Bool = false, single: Bool = false,
                   parts: [Int: String?] = [:]) -> BatchStateMachine.Batch {
    .init(id: 1, state: state, startOffset: 100, endOffset: 199, sha256: "ours", uploadID: uploadID,
          hasRejected: rejected, singlePut: single, recordedParts: parts)
}

@Suite("commit protocol state machine")
struct BatchStateMachineTests {
    @Test("fresh batch: HEAD (absent), dead-letter PUT, multipart create/parts/complete, UPLOADED, commit end+1, COMMITTED, delete staged")
    func freshMultipart() {
        var w = World(ourSHA: "ours", ourEnd: 199)
        var m = BatchStateMachine(batch: batch(.staged, rejected: true), freshlyStaged: true)
        let (outcome, steps) = w.run(&m)
        #expect(outcome == .committed)
        #expect(w.manifestStates == [.uploading, .uploaded, .committed])
        #expect(w.committed == 200)
        #expect(w.object?.sha256 == "ours")
        #expect(w.rejectedObjectPresent)
        #expect(w.stagedDeleted)
        #expect(w.uploads.isEmpty)
        #expect(!steps.contains(.verifyStagedFiles), "a freshly staged file is not re-hashed")
        // Write-ahead order: UPLOADING recorded before any part; UPLOADED before the commit.
        let iRecordUploading = steps.firstIndex(of: .record(to: .uploading, uploadID: "u1", etag: nil, note: nil))!
        let iParts = steps.firstIndex(of: .uploadParts(uploadID: "u1", skip: []))!
        let iUploaded = steps.firstIndex { if case .record(.uploaded, _, _, _) = $0 { return true } else { return false } }!
        let iCommit = steps.firstIndex(of: .commitOffset(200))!
        let iCommitted = steps.firstIndex { if case .record(.committed, _, _, _) = $0 { return true } else { return false } }!
        let iDelete = steps.firstIndex(of: .deleteStagedFiles)!
        #expect(iRecordUploading < iParts && iParts < iUploaded && iUploaded < iCommit && iCommit < iCommitted && iCommitted < iDelete)
    }

    @Test("small batch: a single conditional PutObject, then commit")
    func singlePut() {
        var w = World(ourSHA: "ours", ourEnd: 199)
        var m = BatchStateMachine(batch: batch(.staged, single: true), freshlyStaged: true)
        let (outcome, steps) = w.run(&m)
        #expect(outcome == .committed)
        #expect(steps.contains(.putObject))
        #expect(!steps.contains(.createUpload))
        #expect(w.manifestStates == [.uploaded, .committed])
    }

    @Test("recovered STAGED batch: file re-hashed before upload; a missing file abandons it, quarantines and never commits")
    func stagedMissingFile() {
        var w = World(ourSHA: "ours", ourEnd: 199)
        w.stagedFile = .missing(path: "/s/x.parquet")
        var m = BatchStateMachine(batch: batch(.staged))
        let (outcome, _) = w.run(&m)
        #expect(outcome == .abandoned(reason: "staged file missing: /s/x.parquet"))
        #expect(w.manifestStates == [.abandoned])
        #expect(w.quarantined)
        #expect(w.committed == nil)
        #expect(w.object == nil)
    }

    @Test("recovered STAGED batch whose object already exists with our sha (crash after complete): UPLOADED without re-upload")
    func stagedAlreadyUploaded() {
        var w = World(ourSHA: "ours", ourEnd: 199)
        w.object = .init(sha256: "ours", endOffset: 199, etag: "e0")
        var m = BatchStateMachine(batch: batch(.staged))
        let (outcome, steps) = w.run(&m)
        #expect(outcome == .committed)
        #expect(!steps.contains(.createUpload) && !steps.contains(.putObject) && !steps.contains(.verifyStagedFiles))
        #expect(w.manifestStates == [.uploaded, .committed])
    }

    @Test("UPLOADING after a crash mid-parts: ListParts, keep parts whose checksum matches the manifest, upload the rest, complete")
    func resumeParts() {
        var w = World(ourSHA: "ours", ourEnd: 199)
        w.uploads["u9"] = [1: "ck1", 2: "stale"]
        var m = BatchStateMachine(batch: batch(.uploading, uploadID: "u9", parts: [1: "ck1", 2: "ck2"]))
        let (outcome, steps) = w.run(&m)
        #expect(outcome == .committed)
        #expect(steps.contains(.uploadParts(uploadID: "u9", skip: [1])))
        #expect(w.partsUploaded == [2, 3])
        #expect(w.manifestStates == [.uploaded, .committed])
    }

    @Test("UPLOADING whose upload is gone and whose object exists with our sha (crash after complete): UPLOADED, commit")
    func uploadGoneObjectOurs() {
        var w = World(ourSHA: "ours", ourEnd: 199)
        w.object = .init(sha256: "ours", endOffset: 199, etag: "e1")
        var m = BatchStateMachine(batch: batch(.uploading, uploadID: "u9"))
        let (outcome, steps) = w.run(&m)
        #expect(outcome == .committed)
        #expect(steps.contains(.abortUpload(uploadID: "u9")))
        #expect(w.manifestStates == [.uploaded, .committed])
        #expect(w.committed == 200)
    }

    @Test("UPLOADING whose upload vanished and no object exists: a new upload is created and recorded")
    func uploadGoneNoObject() {
        var w = World(ourSHA: "ours", ourEnd: 199)
        var m = BatchStateMachine(batch: batch(.uploading, uploadID: "u9"))
        let (outcome, _) = w.run(&m)
        #expect(outcome == .committed)
        #expect(w.manifestStates == [.uploading, .uploaded, .committed])
        #expect(w.object?.sha256 == "ours")
    }

    @Test("412 on complete with another writer's object: abort, delete our dead-letter object, SUPERSEDED, resume after the winner's end")
    func zombieLoses() {
        var w = World(ourSHA: "ours", ourEnd: 199)
        w.object = nil
        var m = BatchStateMachine(batch: batch(.staged, rejected: true), freshlyStaged: true)
        // The other writer completes between our HEAD and our complete.
        var steps: [BatchStateMachine.Step] = []
        var step = m.start()
        while true {
            steps.append(step)
            if case .finished = step { break }
            if case .completeUpload = step { w.object = .init(sha256: "theirs", endOffset: 250, etag: "e-z") }
            step = m.next(w.answer(step))
        }
        #expect(steps.last == .finished(.superseded(resumeAt: 251)))
        #expect(w.manifestStates == [.uploading, .superseded])
        #expect(w.uploads.isEmpty, "our upload is aborted")
        #expect(!w.rejectedObjectPresent, "our dead-letter object (different range) is deleted")
        #expect(w.committed == nil, "the loser never commits")
        #expect(w.object?.sha256 == "theirs")
    }

    @Test("a winner with the same range keeps its dead-letter object (same key)")
    func zombieSameRange() {
        var w = World(ourSHA: "ours", ourEnd: 199)
        w.object = .init(sha256: "theirs", endOffset: 199, etag: "e")
        w.rejectedObjectPresent = true
        var m = BatchStateMachine(batch: batch(.staged, rejected: true), freshlyStaged: true)
        let (outcome, steps) = w.run(&m)
        #expect(outcome == .superseded(resumeAt: 200))
        #expect(!steps.contains(.deleteRejected))
        #expect(w.rejectedObjectPresent)
    }

    @Test("409 ConditionalRequestConflict: a new upload is created and every part sent again")
    func conflictRestarts() {
        var w = World(ourSHA: "ours", ourEnd: 199)
        w.conditionalFailsWith = .conflict
        var m = BatchStateMachine(batch: batch(.staged), freshlyStaged: true)
        let (outcome, _) = w.run(&m)
        #expect(outcome == .committed)
        #expect(w.manifestStates == [.uploading, .uploading, .uploaded, .committed])
        #expect(w.partsUploaded == [1, 2, 3, 1, 2, 3])
    }

    @Test("UPLOADED with Kafka already at end+1 (crash after commit): COMMITTED without committing again")
    func alreadyCommitted() {
        var w = World(ourSHA: "ours", ourEnd: 199)
        w.object = .init(sha256: "ours", endOffset: 199, etag: "e")
        w.committed = 200
        var m = BatchStateMachine(batch: batch(.uploaded))
        let (outcome, steps) = w.run(&m)
        #expect(outcome == .committed)
        #expect(!steps.contains { if case .commitOffset = $0 { return true } else { return false } })
        #expect(w.manifestStates == [.committed])
    }

    @Test("UPLOADED but Kafka is ahead (another owner progressed): never commits backwards")
    func neverBackwards() {
        var w = World(ourSHA: "ours", ourEnd: 199)
        w.object = .init(sha256: "ours", endOffset: 199, etag: "e")
        w.committed = 5000
        var m = BatchStateMachine(batch: batch(.uploaded))
        let (outcome, _) = w.run(&m)
        #expect(outcome == .committed)
        #expect(w.committed == 5000)
    }

    @Test("UPLOADED on a partition this process does not own, or a commit rejected for generation: left UPLOADED")
    func notOwned() {
        var w = World(ourSHA: "ours", ourEnd: 199)
        w.object = .init(sha256: "ours", endOffset: 199, etag: "e")
        w.owned = false
        w.committed = 100
        var m = BatchStateMachine(batch: batch(.uploaded))
        #expect(w.run(&m).0 == .uploadedNotOwned)
        #expect(w.manifestStates.isEmpty)
        #expect(w.committed == 100)

        var w2 = World(ourSHA: "ours", ourEnd: 199)
        w2.object = .init(sha256: "ours", endOffset: 199, etag: "e")
        w2.commitRejected = true
        var m2 = BatchStateMachine(batch: batch(.uploaded))
        #expect(w2.run(&m2).0 == .uploadedNotOwned)
        #expect(w2.manifestStates.isEmpty)
        #expect(!w2.stagedDeleted, "staged files stay until the batch is COMMITTED")
    }

    @Test("UPLOADING with a corrupt staged file and no object: upload aborted, ABANDONED, quarantined")
    func uploadingCorrupt() {
        var w = World(ourSHA: "ours", ourEnd: 199)
        w.uploads["u9"] = [1: "ck1"]
        w.stagedFile = .mismatch(path: "/s/f", detail: "sha256 differs")
        var m = BatchStateMachine(batch: batch(.uploading, uploadID: "u9", parts: [1: "ck1"]))
        let (outcome, steps) = w.run(&m)
        #expect(outcome == .abandoned(reason: "staged file corrupt: /s/f: sha256 differs"))
        #expect(steps.contains(.abortUpload(uploadID: "u9")))
        #expect(w.uploads.isEmpty)
        #expect(w.quarantined)
        #expect(w.manifestStates == [.abandoned])
    }

    @Test("a recovered UPLOADED batch whose object vanished before the commit is ABANDONED (re-read), never committed")
    func uploadedObjectVanished() {
        var w = World(ourSHA: "ours", ourEnd: 199)
        w.committed = 100
        var m = BatchStateMachine(batch: batch(.uploaded))
        let (outcome, steps) = w.run(&m)
        #expect(outcome == .abandoned(reason: "object vanished before its offsets were committed"))
        #expect(!steps.contains { if case .commitOffset = $0 { return true } else { return false } })
        #expect(w.manifestStates == [.abandoned])
        #expect(w.committed == 100)
    }

    @Test("a vanished object whose offsets Kafka already passed needs an operator: nothing is changed")
    func uploadedObjectVanishedAfterCommit() {
        var w = World(ourSHA: "ours", ourEnd: 199)
        w.committed = 200
        var m = BatchStateMachine(batch: batch(.uploaded))
        let (outcome, _) = w.run(&m)
        guard case .needsAttention(let why) = outcome else { Issue.record("\(outcome)"); return }
        #expect(why.contains("reset the group's offset for this partition to 100"))
        #expect(w.manifestStates.isEmpty)
    }

    @Test("a COMMITTED batch only has its leftover staged files deleted")
    func committedCleanup() {
        var w = World(ourSHA: "ours", ourEnd: 199)
        var m = BatchStateMachine(batch: batch(.committed))
        let (outcome, steps) = w.run(&m)
        #expect(outcome == .committed)
        #expect(steps == [.deleteStagedFiles, .finished(.committed)])
    }
}
