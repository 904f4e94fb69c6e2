import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The producer's durable progress in one file: which file (device + inode + fingerprint, and the
/// producer's own identity of it, ``fileID``), how far (byte offset), and how many lines lie
/// before that offset.
///
/// Invariant, kept by ``FileProducer``: every line of the file that ends at or before `offset`
/// was either delivered to Kafka (acknowledged by `flush`) or deliberately skipped before the
/// checkpoint was written. A checkpoint naming a file with `fingerprint == nil` means no line of
/// that file has been sent yet (it is written when the producer switches files, before the
/// new file's fingerprint can be computed).
public struct Checkpoint: Codable, Sendable, Equatable {
    /// Format version: 2 (written); 1 (read: no ``fileID``, ``tailLength``, ``tailHash``).
    public var version: Int
    /// Where the file was when the checkpoint was written (informational; files are found by
    /// device + inode).
    public var path: String
    /// `st_dev` of the file.
    public var device: UInt64
    /// `st_ino` of the file.
    public var inode: UInt64
    /// Lower-case hex SHA-256 of the file's first ``fingerprintLength`` bytes, nil until fixed.
    public var fingerprint: String?
    /// Bytes covered by the fingerprint: 1024, or fewer for a file that stayed shorter (see
    /// docs/producer.md, "File identity").
    public var fingerprintLength: Int
    /// Byte offset of the first byte not yet covered (the end of the last line covered).
    public var offset: UInt64
    /// Lines (newline-terminated, sent or skipped) before ``offset``.
    public var line: UInt64
    /// The identity the producer gave this file when it first opened it (32 random hex digits),
    /// sent with each of its lines as the `tidemark.fileid` header. Unique per file, even for
    /// files with identical bytes, so Kafka's records of one file never stand for another's.
    /// nil only in version-1 checkpoints.
    public var fileID: String?
    /// Bytes just before ``offset`` covered by ``tailHash`` (up to 1024; 0 at offset 0).
    public var tailLength: Int?
    /// Lower-case hex SHA-256 of the ``tailLength`` bytes before ``offset``: on resume, the file
    /// must still hold exactly those bytes there (a file truncated and refilled, even with the
    /// same first bytes, fails this).
    public var tailHash: String?

    /// A version-2 checkpoint with the given fields.
    public init(path: String, device: UInt64, inode: UInt64, fingerprint: String?, fingerprintLength: Int,
                offset: UInt64, line: UInt64, fileID: String? = nil, tailLength: Int = 0, tailHash: String? = nil) {
        self.version = 2
        self.path = path
        self.device = device
        self.inode = inode
        self.fingerprint = fingerprint
        self.fingerprintLength = fingerprintLength
        self.offset = offset
        self.line = line
        self.fileID = fileID
        self.tailLength = tailLength
        self.tailHash = tailHash
    }
}

/// Reads and writes `checkpoint.json` in the state directory, atomically and durably: the new
/// content goes to `checkpoint.json.tmp`, which is fsync'd, renamed over `checkpoint.json`, and
/// then the directory is fsync'd so the rename itself survives a power loss.
///
/// Also holds an exclusive `flock` on `DIR/lock` for its lifetime, so two producers cannot share
/// a state directory. Used from one thread; not `Sendable`.
public final class CheckpointStore {
    /// The state directory.
    public let directory: String
    /// `DIR/checkpoint.json`.
    public var checkpointPath: String { directory + "/checkpoint.json" }
    private var lockFD: Int32 = -1

    /// Creates the directory if needed and takes its lock.
    /// - Parameter lock: take the exclusive lock (tests reading a live producer's state pass false).
    /// - Throws: ``FileProducerError`` (`permissionDenied`, `stateDirectoryInUse`, `io`) naming the path.
    public init(directory: String, lock: Bool = true) throws(FileProducerError) {
        self.directory = directory
        if mkdir(directory, 0o755) != 0 && errno != EEXIST {
            throw .fromErrno(errno, path: directory, operation: "create state directory")
        }
        guard lock else { return }
        let lockPath = directory + "/lock"
        lockFD = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lockFD >= 0 else { throw .fromErrno(errno, path: lockPath, operation: "open lock file") }
        if flock(lockFD, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            Glibc.close(lockFD)
            lockFD = -1
            if code == EWOULDBLOCK { throw .stateDirectoryInUse(path: lockPath) }
            throw .fromErrno(code, path: lockPath, operation: "lock")
        }
    }

    deinit {
        if lockFD >= 0 { Glibc.close(lockFD) }
    }

    /// The stored checkpoint, or nil when there is none yet.
    /// - Throws: ``FileProducerError/corruptCheckpoint(path:reason:)`` when it does not decode.
    public func load() throws(FileProducerError) -> Checkpoint? {
        let path = checkpointPath
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw .fromErrno(errno, path: path, operation: "open checkpoint")
        }
        defer { Glibc.close(fd) }
        var data = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .fromErrno(errno, path: path, operation: "read checkpoint")
            }
            if n == 0 { break }
            data += chunk[0..<n]
        }
        do {
            let checkpoint = try JSONDecoder().decode(Checkpoint.self, from: Data(data))
            guard checkpoint.version == 1 || checkpoint.version == 2 else {
                throw FileProducerError.corruptCheckpoint(path: path, reason: "unknown version \(checkpoint.version)")
            }
            guard (0...FileTailer.fingerprintBytes).contains(checkpoint.fingerprintLength) else {
                throw FileProducerError.corruptCheckpoint(
                    path: path, reason: "fingerprintLength \(checkpoint.fingerprintLength) is not in 0...\(FileTailer.fingerprintBytes)")
            }
            if let tail = checkpoint.tailLength,
               !(0...FileTailer.tailBytes).contains(tail) || UInt64(tail) > checkpoint.offset {
                throw FileProducerError.corruptCheckpoint(
                    path: path, reason: "tailLength \(tail) is not in 0...\(FileTailer.tailBytes) or exceeds offset \(checkpoint.offset)")
            }
            return checkpoint
        } catch let error as FileProducerError {
            throw error
        } catch {
            throw .corruptCheckpoint(path: path, reason: "\(error)")
        }
    }

    /// Replaces the stored checkpoint (temp file, fsync, rename, fsync of the directory).
    /// - Throws: ``FileProducerError`` naming the file that failed.
    public func save(_ checkpoint: Checkpoint) throws(FileProducerError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let bytes: [UInt8]
        do {
            bytes = Array(try encoder.encode(checkpoint)) + [0x0A]
        } catch {
            throw .io(path: checkpointPath, operation: "encode checkpoint", errno: EINVAL)
        }
        let tmp = checkpointPath + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .fromErrno(errno, path: tmp, operation: "create") }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                let code = errno
                Glibc.close(fd)
                throw .fromErrno(code, path: tmp, operation: "write")
            }
            done += n
        }
        if fsync(fd) != 0 {
            let code = errno
            Glibc.close(fd)
            throw .fromErrno(code, path: tmp, operation: "fsync")
        }
        Glibc.close(fd)
        guard rename(tmp, checkpointPath) == 0 else { throw .fromErrno(errno, path: checkpointPath, operation: "rename") }
        let dirFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dirFD >= 0 else { throw .fromErrno(errno, path: directory, operation: "open directory") }
        defer { Glibc.close(dirFD) }
        guard fsync(dirFD) == 0 else { throw .fromErrno(errno, path: directory, operation: "fsync directory") }
    }

    /// Appends one JSON line to `DIR/skipped.jsonl` (lines not sent because they were too long).
    /// Written before the checkpoint that moves past the line, so a crash in between can repeat
    /// an entry; `file` + `offset` identify duplicates.
    /// - Throws: ``FileProducerError`` naming the file.
    public func appendSkipped(_ entry: [String: String]) throws(FileProducerError) {
        let path = directory + "/skipped.jsonl"
        let data = (try? JSONSerialization.data(withJSONObject: entry, options: [.sortedKeys])) ?? Data("{}".utf8)
        let bytes = Array(data) + [0x0A]
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .fromErrno(errno, path: path, operation: "open") }
        defer { Glibc.close(fd) }
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count else { throw .fromErrno(n < 0 ? errno : EIO, path: path, operation: "append") }
    }
}
