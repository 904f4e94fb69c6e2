import Crypto
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Where a start without a checkpoint begins (`--start-from`).
public enum StartFrom: String, Sendable, CaseIterable {
    /// At offset 0 of the oldest rotated sibling, then every newer one, then the followed file:
    /// nothing still on disk is left out (a producer killed before its first checkpoint, then a
    /// rotation, loses nothing).
    case oldest
    /// At offset 0 of the followed file; rotated siblings are not read.
    case current
}

/// Which names in the followed file's directory are its rotated siblings, and how they are
/// ordered from oldest to newest.
///
/// Default: `BASE` followed by `.` or `-` and a digit (`app.log.1`, `app.log-20261126`,
/// `app.log.2026-11-26`). With globs (`--rotated-glob`, `fnmatch(3)` patterns over the names in
/// the directory) exactly the names matching one of them. Compressed names (`.gz`, `.bz2`,
/// `.xz`, `.zst`, `.lz4`, `.Z`, `.zip`, `.lzma`) never match: they cannot be read as text.
///
/// Order, oldest first: names of the form `BASE.N` (N of 1-6 digits, logrotate's numbered
/// scheme) come last, by N descending (`app.log.3`, `app.log.2`, `app.log.1`); every other
/// sibling comes before them, in byte order of the name (date suffixes such as `-20261125`,
/// `-20261126` sort by age).
public struct SiblingRule: Sendable, Equatable {
    /// The `--rotated-glob` patterns; empty for the default rule.
    public var globs: [String]

    /// - Parameter globs: `fnmatch` patterns over names in the directory; empty: the default.
    public init(globs: [String] = []) { self.globs = globs }

    static let compressedSuffixes = [".gz", ".bz2", ".xz", ".zst", ".lz4", ".Z", ".zip", ".lzma"]

    /// True when `name` (in the followed file's directory) is a rotated sibling of `base`.
    public func matches(_ name: String, base: String) -> Bool {
        guard name != base, !Self.compressedSuffixes.contains(where: { name.hasSuffix($0) }) else { return false }
        if !globs.isEmpty { return globs.contains { fnmatch($0, name, 0) == 0 } }
        guard name.hasPrefix(base) else { return false }
        let suffix = Array(name.utf8.dropFirst(base.utf8.count))
        guard suffix.count >= 2, suffix[0] == UInt8(ascii: ".") || suffix[0] == UInt8(ascii: "-") else { return false }
        return suffix[1] >= UInt8(ascii: "0") && suffix[1] <= UInt8(ascii: "9")
    }

    /// Sort key: smaller is older.
    static func ageKey(_ name: String, base: String) -> (Int, Int, String) {
        if name.hasPrefix(base + ".") {
            let digits = name.dropFirst(base.count + 1)
            if (1...6).contains(digits.count), digits.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(digits) {
                return (1, -n, "")
            }
        }
        return (0, 0, name)
    }
}

/// Follows a log file like `tail -F`, by polling: returns each complete line once, with its
/// byte range and line number, and keeps reading across rotation and truncation
/// (docs/producer.md, "Rotation styles").
///
/// - **Identity**: each file gets a random ``Checkpoint/fileID`` when the tailer first opens it
///   (or reads it again after a truncation); a checkpoint carries it, so a resumed file keeps
///   it, and no other file ever has it. Device + inode find the checkpointed file again; its
///   fingerprint (SHA-256 of the first 1024 bytes) and the hash of the 1 KiB before the
///   checkpoint offset confirm that it still holds the bytes that were read.
/// - **Rotation by rename** (numbered `app.log.1`, `dateext` `app.log-20261126`, or names given
///   by ``SiblingRule``): at the end of the open file the tailer checks whether the followed
///   path still names the same device + inode. When it does not, the old file is read to its
///   end through the open descriptor (a final line without newline is returned as a line),
///   then the next newer file in the directory's age order is opened. The successor is chosen
///   from a directory scan repeated until two scans agree, and confirmed after opening (its
///   device + inode must be the scanned one; otherwise the directory is scanned again). A
///   finished file that is no longer in the directory is logged as an error, never skipped
///   silently.
/// - **Truncation / copytruncate**: after every read the bytes before the read position are
///   read again and compared with those read earlier (up to 1 KiB); a shrink or a rewrite
///   means the file was truncated. The tailer then looks for a copy among the rotated siblings
///   (same bytes up to the read position) and continues in it with the same identity; once the
///   copy is finished, the truncated file is read from offset 0 as a new file. No line is ever
///   built from bytes read after a truncation.
/// - **Partial lines**: a trailing line without newline waits for its newline.
/// - **Fingerprint**: a file shorter than 1 KiB is fingerprinted over what it holds once
///   `fingerprintGrace` has passed since its first complete line (at once when rotated away or
///   when `finalizeShortFiles`). No line is returned before its file's fingerprint is fixed.
/// - **Resume**: given a ``Checkpoint``, the first open looks for the checkpointed device +
///   inode at the path and among its rotated siblings, or, failing that, for a sibling holding
///   the checkpointed bytes (a copy), and continues there at the checkpoint's offset. When
///   neither is found it logs an error and starts at offset 0 of `path`.
/// - **First start** (no checkpoint): ``StartFrom``.
///
/// Used from one thread; not `Sendable`.
public final class FileTailer {
    /// Bytes a fingerprint covers when the file is long enough.
    public static let fingerprintBytes = 1024
    /// Bytes before the read position compared after every read, and hashed into a checkpoint.
    public static let tailBytes = 1024

    struct FileKey: Hashable {
        let device: UInt64
        let inode: UInt64
    }

    /// A name in the directory and the file it named when scanned.
    struct Entry {
        let path: String
        let key: FileKey
        let size: UInt64
    }

    private final class OpenFile {
        var fd: Int32
        var path: String
        var device: UInt64
        var inode: UInt64
        var id: String
        var fingerprint: String?
        var fingerprintLength = 0
        /// Offset after the last line returned.
        var consumed: UInt64 = 0
        var line: UInt64 = 0
        var buffer: [UInt8] = []
        /// File offset of `buffer[0]`.
        var bufferBase: UInt64 = 0
        /// Up to ``FileTailer/tailBytes`` bytes read just before `bufferBase`.
        var dropped: [UInt8] = []
        var head = 0
        var scanFrom = 0
        /// In an over-long line that started at `consumed`; its bytes are dropped as read.
        var skipping = false
        /// The followed path no longer names this file (or it is a copy): read it to its end.
        var rotated = false
        var lineReadyAt: ContinuousClock.Instant?
        var lastVerify = ContinuousClock.now

        init(fd: Int32, path: String, device: UInt64, inode: UInt64, id: String) {
            self.fd = fd
            self.path = path
            self.device = device
            self.inode = inode
            self.id = id
        }

        var key: FileKey { FileKey(device: device, inode: inode) }
        var readOffset: UInt64 { bufferBase + UInt64(buffer.count) }

        /// Drops `k` bytes from the front of the buffer, remembering the last of them.
        func dropFront(_ k: Int) {
            guard k > 0 else { return }
            let w = FileTailer.tailBytes
            if k >= w {
                dropped = Array(buffer[(k - w)..<k])
            } else {
                dropped = Array((dropped + buffer[0..<k]).suffix(w))
            }
            buffer.removeFirst(k)
            bufferBase += UInt64(k)
        }

        /// Up to `tailBytes` bytes read just before `readOffset`.
        var readWindow: [UInt8] {
            let w = FileTailer.tailBytes
            if buffer.count >= w { return Array(buffer.suffix(w)) }
            return Array(dropped.suffix(w - buffer.count)) + buffer
        }

        /// Up to `tailBytes` bytes just before `consumed`; nil inside a skipped over-long line.
        var consumedWindow: [UInt8]? {
            guard consumed == bufferBase + UInt64(head) else { return nil }
            let w = FileTailer.tailBytes
            if head >= w { return Array(buffer[(head - w)..<head]) }
            return Array(dropped.suffix(w - head)) + Array(buffer[0..<head])
        }

        func reset(id: String) {
            self.id = id
            fingerprint = nil
            fingerprintLength = 0
            consumed = 0
            line = 0
            buffer = []
            bufferBase = 0
            dropped = []
            head = 0
            scanFrom = 0
            skipping = false
            lineReadyAt = nil
        }

        deinit { Glibc.close(fd) }
    }

    private enum Next {
        /// The first file without a checkpoint.
        case first
        /// Offset 0 of the followed path.
        case path
        /// The file after the finished one.
        case after(FileKey)
    }

    private enum ReadResult {
        case data
        case end
        case truncated
    }

    /// The followed path.
    public let path: String
    /// Longest line returned as a line; longer ones become ``TailEvent/tooLong(_:)``.
    public let maxLineBytes: Int
    /// How long a file shorter than 1 KiB may delay its first line before it is fingerprinted
    /// over fewer bytes.
    public var fingerprintGrace: Duration
    /// Fingerprint a short file at once instead of waiting (`--exit-at-eof`: nothing will grow).
    public var finalizeShortFiles = false
    /// Where a start without a checkpoint begins.
    public let startFrom: StartFrom
    /// Which names are rotated siblings of `path`.
    public let siblings: SiblingRule
    private let directory: String
    private let base: String
    private let logger: Logger
    private var current: OpenFile?
    private var resume: Checkpoint?
    private var pending: Next = .first
    /// Files older than the open one when it was opened (for a successor whose predecessor vanished).
    private var olderKeys: Set<FileKey> = []
    private var reportedMissing = false
    private var lastPosition: Checkpoint?
    private var chunk = [UInt8](repeating: 0, count: 256 * 1024)
    /// Called just before a chosen file is opened (tests: rotate at the worst moment).
    var beforeOpen: ((String) -> Void)?

    /// - Parameters:
    ///   - path: the file to follow (need not exist yet).
    ///   - resume: where to continue (the stored checkpoint), nil for a first start.
    ///   - maxLineBytes: longest line returned (default 1 MiB).
    ///   - fingerprintGrace: see ``fingerprintGrace`` (default 1 s).
    ///   - startFrom: where a start without `resume` begins (default: the oldest rotated sibling).
    ///   - siblings: which names are rotated siblings (default: ``SiblingRule``'s default rule).
    public init(path: String, resume: Checkpoint?, maxLineBytes: Int = 1 << 20,
                fingerprintGrace: Duration = .seconds(1), startFrom: StartFrom = .oldest,
                siblings: SiblingRule = SiblingRule(), logger: Logger) {
        self.path = path
        self.resume = resume
        self.maxLineBytes = maxLineBytes
        self.fingerprintGrace = fingerprintGrace
        self.startFrom = startFrom
        self.siblings = siblings
        self.logger = logger
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { String(path[..<$0]) } ?? "."
        directory = dir.isEmpty ? "/" : dir
        base = slash.map { String(path[path.index(after: $0)...]) } ?? path
    }

    /// The position after the last line returned: the checkpoint to write once everything
    /// returned so far is delivered. nil before the first file was opened.
    public var position: Checkpoint? {
        guard let f = current else { return lastPosition }
        let tail = f.consumedWindow ?? []
        return Checkpoint(path: f.path, device: f.device, inode: f.inode, fingerprint: f.fingerprint,
                          fingerprintLength: f.fingerprintLength, offset: f.consumed, line: f.line, fileID: f.id,
                          tailLength: tail.count, tailHash: tail.isEmpty ? nil : Self.hex(SHA256.hash(data: tail)))
    }

    /// True when the open file has been read to its end and holds no complete line not yet returned.
    public private(set) var atEnd = false

    /// The next event. Never blocks: returns ``TailEvent/idle(fileMissing:)`` when there is
    /// nothing to do, and the caller sleeps before asking again.
    /// - Throws: ``FileProducerError`` for an unreadable file (`permissionDenied` names it) or
    ///   a failed read (with the path).
    public func next() throws(FileProducerError) -> TailEvent {
        atEnd = false
        if current == nil {
            if let event = try openNext() { return event }
        }
        while let f = current {
            if let nl = newlineIndex(f) {
                if f.fingerprint == nil {
                    if try fixFingerprint(f, force: f.rotated || finalizeShortFiles) {
                        return .position(position!, .fingerprinted)
                    }
                    return .idle(fileMissing: false)
                }
                return emit(f, newlineAt: nl)
            }
            if !f.skipping && f.buffer.count - f.head > maxLineBytes {
                f.skipping = true
            }
            if f.skipping {
                f.dropFront(f.buffer.count)
                f.head = 0
                f.scanFrom = 0
            }
            switch try readMore(f) {
            case .data: continue
            case .truncated: return try truncated(f)
            case .end: break
            }
            // At the end of the file.
            if !f.rotated {
                if try firstBytesChanged(f) { return try truncated(f) }
                if try isRotated(f) {
                    f.rotated = true
                    continue  // read once more: everything written before the rename is visible now
                }
                atEnd = true
                return .idle(fileMissing: false)
            }
            // Rotated away and read to its end: return an unterminated last line, then move on.
            if f.skipping || f.buffer.count > f.head {
                if f.fingerprint == nil {
                    _ = try fixFingerprint(f, force: true)
                    return .position(position!, .fingerprinted)
                }
                return emitUnterminated(f)
            }
            lastPosition = position
            pending = .after(f.key)
            reportedMissing = false
            logger.info("finished rotated file", metadata: [
                "file.path": "\(f.path)", "file.inode": "\(f.inode)", "file.bytes": "\(f.consumed)",
                "file.lines": "\(f.line)",
            ])
            current = nil
            if let event = try openNext() { return event }
        }
        return .idle(fileMissing: true)
    }

    // MARK: Opening

    private func openNext() throws(FileProducerError) -> TailEvent? {
        if let cp = resume {
            resume = nil
            if let f = try findCheckpointed(cp) {
                current = f
                noteOlder(than: f.key, in: scan())
                logger.info("resuming", metadata: [
                    "file.path": "\(f.path)", "file.offset": "\(f.consumed)", "file.line": "\(f.line)",
                ])
                return .position(position!, .resumed)
            }
            logger.error("""
                the checkpointed file (device \(cp.device), inode \(cp.inode), last seen at \(cp.path), offset \
                \(cp.offset)) is neither at \(path) nor among its rotated siblings, and no sibling holds its bytes: \
                its unread lines, and any file rotated between it and \(path), are not read; starting at offset 0 of \(path)
                """)
            pending = .path
        }
        switch pending {
        case .first where startFrom == .oldest:
            for _ in 0..<10 {
                let entries = scan()
                guard let oldest = entries.first else { return nil }
                if let f = try open(oldest) {
                    olderKeys = []
                    return opened(f)
                }
            }
            return nil
        case .first, .path:
            beforeOpen?(path)
            let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
            if fd < 0 {
                if errno == ENOENT { return nil }
                throw .fromErrno(errno, path: path, operation: "open")
            }
            let f = try wrap(fd: fd, path: path)
            noteOlder(than: f.key, in: scan())
            return opened(f)
        case .after(let finished):
            return try openSuccessor(of: finished)
        }
    }

    /// Opens the file after `finished` in the directory's age order, confirming after the open
    /// that it is the file the scan found (a rotation in between makes it scan again).
    private func openSuccessor(of finished: FileKey) throws(FileProducerError) -> TailEvent? {
        for _ in 0..<10 {
            let entries = scan()
            if let i = entries.firstIndex(where: { $0.key == finished }) {
                // Not yet re-created (rename rotation before the new file exists): wait.
                guard i + 1 < entries.count else { return nil }
                if let f = try open(entries[i + 1]) {
                    noteOlder(than: f.key, in: entries)
                    return opened(f)
                }
                continue  // renamed between the scan and the open: scan again
            }
            // The finished file is no longer in the directory (deleted, compressed, moved away).
            let candidates = entries.filter { !olderKeys.contains($0.key) && $0.key != finished }
            if !reportedMissing {
                reportedMissing = true
                logger.error("""
                    the finished file (device \(finished.device), inode \(finished.inode)) is no longer at \(path) \
                    nor among its rotated siblings, so the next newer file cannot be told by its place; \
                    continuing with the oldest file not known to be older: \
                    \(candidates.first?.path ?? "none yet, waiting for \(path)"). Files rotated and deleted meanwhile \
                    are not read
                    """)
            }
            guard let next = candidates.first else { return nil }
            if let f = try open(next) {
                noteOlder(than: f.key, in: entries)
                return opened(f)
            }
        }
        return nil
    }

    private func opened(_ f: OpenFile) -> TailEvent {
        current = f
        reportedMissing = false
        logger.info("following file", metadata: ["file.path": "\(f.path)", "file.inode": "\(f.inode)"])
        return .position(position!, .opened)
    }

    private func noteOlder(than key: FileKey, in entries: [Entry]) {
        olderKeys = Set(entries.prefix { $0.key != key }.map(\.key))
    }

    /// Opens `entry.path` if it still names `entry.key`; nil when it does not (or is gone).
    private func open(_ entry: Entry) throws(FileProducerError) -> OpenFile? {
        beforeOpen?(entry.path)
        let fd = Glibc.open(entry.path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw .fromErrno(errno, path: entry.path, operation: "open")
        }
        let f = try wrap(fd: fd, path: entry.path)
        return f.key == entry.key ? f : nil
    }

    private func wrap(fd: Int32, path: String) throws(FileProducerError) -> OpenFile {
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let code = errno
            Glibc.close(fd)
            throw .fromErrno(code, path: path, operation: "fstat")
        }
        return OpenFile(fd: fd, path: path, device: UInt64(st.st_dev), inode: UInt64(st.st_ino), id: Self.newFileID())
    }

    private func findCheckpointed(_ cp: Checkpoint) throws(FileProducerError) -> OpenFile? {
        let entries = scan()
        let key = FileKey(device: cp.device, inode: cp.inode)
        if let e = entries.first(where: { $0.key == key }), let f = try open(e) {
            if try adopt(f, cp) { return f }
            logger.warning("file at \(e.path) has the checkpointed inode but other content (truncated or replaced)")
        }
        // A copy holding the checkpointed bytes (copytruncate while the producer was down).
        guard cp.fingerprint != nil, (cp.tailLength ?? 0) > 0 else { return nil }
        for e in entries.reversed() where e.path != path && e.key != key && e.size >= cp.offset {
            guard let f = try open(e) else { continue }
            if try adopt(f, cp) {
                logger.notice("the checkpointed file's bytes are in \(e.path) (a copy): resuming there")
                return f
            }
        }
        return nil
    }

    /// Takes over the checkpoint's identity and position when `f` holds the checkpointed bytes.
    private func adopt(_ f: OpenFile, _ cp: Checkpoint) throws(FileProducerError) -> Bool {
        f.id = cp.fileID ?? f.id
        guard let fingerprint = cp.fingerprint else { return true }  // nothing of it was read
        var st = stat()
        guard fstat(f.fd, &st) == 0 else { throw .fromErrno(errno, path: f.path, operation: "fstat") }
        guard UInt64(st.st_size) >= cp.offset,
              try hashPrefix(f, length: cp.fingerprintLength) == fingerprint else { return false }
        let tailLength = cp.tailLength ?? 0
        var window: [UInt8] = []
        if tailLength > 0, let tailHash = cp.tailHash {
            guard let bytes = try readAt(f, offset: cp.offset - UInt64(tailLength), count: tailLength),
                  Self.hex(SHA256.hash(data: bytes)) == tailHash else { return false }
            window = bytes
        }
        f.fingerprint = fingerprint
        f.fingerprintLength = cp.fingerprintLength
        f.consumed = cp.offset
        f.line = cp.line
        f.bufferBase = cp.offset
        f.dropped = window
        f.lastVerify = .now
        return true
    }

    /// Siblings, oldest first, then `path` when it exists; from two directory scans that agree
    /// (a rename during one scan can hide a file or show one twice).
    func scan() -> [Entry] {
        var previous = rawScan()
        for _ in 0..<20 {
            let again = rawScan()
            if let p = previous, let a = again, p.map(\.path) == a.map(\.path), p.map(\.key) == a.map(\.key) { return a }
            previous = again
        }
        logger.warning("the directory \(directory) kept changing during 20 scans; using the last one")
        return previous ?? []
    }

    private func rawScan() -> [Entry]? {
        guard let d = opendir(directory) else { return [] }
        var names: [String] = []
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if siblings.matches(name, base: base) { names.append(name) }
        }
        closedir(d)
        names.sort { SiblingRule.ageKey($0, base: base) < SiblingRule.ageKey($1, base: base) }
        let prefix = directory == "." && !path.hasPrefix("./") ? "" : (directory == "/" ? "/" : directory + "/")
        var out: [Entry] = []
        var keys: Set<FileKey> = []
        for name in names.map({ prefix + $0 }) + [path] {
            var st = stat()
            if stat(name, &st) != 0 {
                if name == path && errno == ENOENT { continue }
                return nil  // renamed away during the scan
            }
            guard (st.st_mode & S_IFMT) == S_IFREG else { continue }
            let key = FileKey(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
            guard keys.insert(key).inserted else { return nil }  // seen under two names
            out.append(Entry(path: name, key: key, size: UInt64(st.st_size)))
        }
        return out
    }

    // MARK: Reading

    private func newlineIndex(_ f: OpenFile) -> Int? {
        let from = max(f.head, f.scanFrom)
        guard from < f.buffer.count else { return nil }
        let found: Int? = f.buffer.withUnsafeBytes { raw in
            guard let p = memchr(raw.baseAddress! + from, 0x0A, raw.count - from) else { return nil }
            return raw.baseAddress!.distance(to: UnsafeRawPointer(p))
        }
        if found == nil { f.scanFrom = f.buffer.count }
        return found
    }

    /// Reads on from `readOffset`; then, before keeping what was read, checks that the bytes
    /// before `readOffset` are still those read earlier (else the file was truncated, and what
    /// was just read may be the new content at the old offset: it is dropped).
    private func readMore(_ f: OpenFile) throws(FileProducerError) -> ReadResult {
        let offset = f.readOffset
        var n = 0
        while true {
            n = chunk.withUnsafeMutableBytes { pread(f.fd, $0.baseAddress, $0.count, off_t(offset)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .fromErrno(errno, path: f.path, operation: "read at byte \(offset) of")
            }
            break
        }
        if offset > 0 {
            let window = f.readWindow
            if window.isEmpty {
                var st = stat()
                guard fstat(f.fd, &st) == 0 else { throw .fromErrno(errno, path: f.path, operation: "fstat") }
                if UInt64(st.st_size) < offset { return .truncated }
            } else if try readAt(f, offset: offset - UInt64(window.count), count: window.count) != window {
                return .truncated
            }
        }
        if n == 0 { return .end }
        f.buffer += chunk[0..<n]
        return .data
    }

    /// Exactly `count` bytes at `offset`, nil when the file ends before.
    private func readAt(_ f: OpenFile, offset: UInt64, count: Int) throws(FileProducerError) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = bytes.withUnsafeMutableBytes { pread(f.fd, $0.baseAddress! + got, count - got, off_t(offset) + off_t(got)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .fromErrno(errno, path: f.path, operation: "read at byte \(offset) of")
            }
            if n == 0 { return nil }
            got += n
        }
        return bytes
    }

    private func emit(_ f: OpenFile, newlineAt nl: Int) -> TailEvent {
        let end = f.bufferBase + UInt64(nl) + 1
        var line = TailedLine(bytes: [], start: f.consumed, end: end, number: f.line + 1,
                              fingerprint: f.fingerprint!, fileID: f.id, path: f.path)
        let event: TailEvent
        if f.skipping || nl - f.head > maxLineBytes {
            event = .tooLong(line)
        } else {
            line.bytes = Array(f.buffer[f.head..<nl])
            event = .line(line)
        }
        f.skipping = false
        f.consumed = end
        f.line += 1
        f.head = nl + 1
        f.scanFrom = f.head
        f.lineReadyAt = nil
        if f.head == f.buffer.count || f.head >= 1 << 20 {
            f.dropFront(f.head)
            f.head = 0
            f.scanFrom = 0
        }
        return event
    }

    private func emitUnterminated(_ f: OpenFile) -> TailEvent {
        let end = f.readOffset
        var line = TailedLine(bytes: [], start: f.consumed, end: end, number: f.line + 1,
                              fingerprint: f.fingerprint!, fileID: f.id, path: f.path)
        let event: TailEvent
        if f.skipping || f.buffer.count - f.head > maxLineBytes {
            event = .tooLong(line)
        } else {
            line.bytes = Array(f.buffer[f.head...])
            event = .line(line)
        }
        f.skipping = false
        f.consumed = end
        f.line += 1
        f.dropFront(f.buffer.count)
        f.head = 0
        f.scanFrom = 0
        return event
    }

    // MARK: Identity

    static func newFileID() -> String {
        var rng = SystemRandomNumberGenerator()
        let a = rng.next() as UInt64
        let b = rng.next() as UInt64
        return withUnsafeBytes(of: (a, b)) { raw in raw.map { String(format2: $0) }.joined() }
    }

    static func hex(_ digest: SHA256.Digest) -> String { digest.map { String(format2: $0) }.joined() }

    private func hashPrefix(_ f: OpenFile, length: Int) throws(FileProducerError) -> String? {
        guard let bytes = try readAt(f, offset: 0, count: length) else { return nil }
        return Self.hex(SHA256.hash(data: bytes))
    }

    private func fixFingerprint(_ f: OpenFile, force: Bool) throws(FileProducerError) -> Bool {
        var st = stat()
        guard fstat(f.fd, &st) == 0 else { throw .fromErrno(errno, path: f.path, operation: "fstat") }
        let length = min(Int(st.st_size), Self.fingerprintBytes)
        if length < Self.fingerprintBytes && !force {
            let now = ContinuousClock.now
            guard let since = f.lineReadyAt else {
                f.lineReadyAt = now
                return false
            }
            if since.duration(to: now) < fingerprintGrace { return false }
        }
        guard let hash = try hashPrefix(f, length: length) else { return false }
        f.fingerprint = hash
        f.fingerprintLength = length
        f.lastVerify = .now
        return true
    }

    /// About once a second at the end of the file: did the fingerprinted first bytes change?
    private func firstBytesChanged(_ f: OpenFile) throws(FileProducerError) -> Bool {
        guard let fingerprint = f.fingerprint, f.lastVerify.duration(to: .now) >= .seconds(1) else { return false }
        f.lastVerify = .now
        return try hashPrefix(f, length: f.fingerprintLength) != fingerprint
    }

    /// The open file was truncated (or rewritten) below its read position: continue in a copy
    /// of it when a rotated sibling is one (copytruncate), else read it again from offset 0.
    private func truncated(_ f: OpenFile) throws(FileProducerError) -> TailEvent {
        let readOffset = f.readOffset
        let window = f.readWindow
        for e in scan().reversed() where e.path != path && e.key != f.key && e.size >= readOffset {
            guard let copy = try open(e) else { continue }
            if let fingerprint = f.fingerprint {
                guard try hashPrefix(copy, length: f.fingerprintLength) == fingerprint else { continue }
            }
            if !window.isEmpty {
                guard try readAt(copy, offset: readOffset - UInt64(window.count), count: window.count) == window else { continue }
            }
            logger.notice("file truncated after being copied (copytruncate): reading its rest from the copy", metadata: [
                "file.path": "\(f.path)", "copy.path": "\(copy.path)", "file.offset": "\(readOffset)",
                "copy.bytes": "\(e.size)",
            ])
            // Take over the copy's descriptor; the truncated file is read again once the copy is finished.
            Glibc.close(f.fd)
            f.fd = Glibc.dup(copy.fd)
            guard f.fd >= 0 else { throw .fromErrno(errno, path: copy.path, operation: "dup descriptor of") }
            f.path = copy.path
            f.device = copy.device
            f.inode = copy.inode
            f.rotated = true
            return .position(position!, .copied)
        }
        var st = stat()
        _ = fstat(f.fd, &st)
        logger.warning("""
            file truncated or rewritten and no rotated sibling holds a copy of it; reading it again from offset 0 \
            as a new file (lines written after byte \(readOffset) and before the truncation, if any, are lost)
            """, metadata: ["file.path": "\(f.path)", "file.size": "\(st.st_size)", "file.offset": "\(f.consumed)"])
        f.reset(id: Self.newFileID())
        f.rotated = false
        return .position(position!, .truncated)
    }

    private func isRotated(_ f: OpenFile) throws(FileProducerError) -> Bool {
        var st = stat()
        if stat(path, &st) != 0 {
            if errno == ENOENT { return true }
            throw .fromErrno(errno, path: path, operation: "stat")
        }
        return UInt64(st.st_dev) != f.device || UInt64(st.st_ino) != f.inode
    }
}

extension String {
    /// Two lower-case hex digits.
    init(format2 byte: UInt8) {
        let digits: [Character] = Array("0123456789abcdef")
        self.init([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
    }
}
