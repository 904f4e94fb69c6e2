import Crypto
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Follows a log file like `tail -F`, by polling: returns each complete line once, with its
/// byte range and line number, and keeps reading across rotation and truncation.
///
/// - **Rotation by rename** (logrotate's `create` mode, ``LogFileWriter``): at the end of the
///   open file the tailer checks whether the followed path still names the same device +
///   inode. When it does not, the old file is read to its end through the open descriptor
///   (a final line without newline is returned as a line), then the tailer moves to the next
///   newer file: if the old file is now `path.k` with `k > 1`, that is `path.(k-1)`, else
///   `path`. So files rotated twice between two polls are not skipped.
/// - **Truncation** (`copytruncate`, `> app.log`): a size below the read position, or a change
///   of the fingerprinted first bytes (checked once a second), restarts at offset 0 as a new
///   file identity.
/// - **Partial lines**: a trailing line without newline waits for its newline.
/// - **Identity**: device + inode + fingerprint (SHA-256 of the first 1024 bytes). A file
///   shorter than 1 KiB is fingerprinted over what it holds once `fingerprintGrace` has passed
///   since its first complete line (at once when rotated away or when `finalizeShortFiles`).
///   No line is returned before its file's fingerprint is fixed.
/// - **Resume**: given a ``Checkpoint``, the first open looks for the checkpointed device +
///   inode (and fingerprint) at the path and among its numbered siblings (`path.1`,
///   `path.2`, ...) and continues there at the checkpoint's offset; when it is not found
///   (deleted, or replaced), reading starts at offset 0 of `path`.
///
/// Used from one thread; not `Sendable`.
public final class FileTailer {
    /// Bytes a fingerprint covers when the file is long enough.
    public static let fingerprintBytes = 1024

    private final class OpenFile {
        let fd: Int32
        let path: String
        let device: UInt64
        let inode: UInt64
        var fingerprint: String?
        var fingerprintLength = 0
        /// Offset after the last line returned.
        var consumed: UInt64 = 0
        var line: UInt64 = 0
        var buffer: [UInt8] = []
        /// File offset of `buffer[0]`.
        var bufferBase: UInt64 = 0
        var head = 0
        var scanFrom = 0
        /// In an over-long line that started at `consumed`; its bytes are dropped as read.
        var skipping = false
        /// The followed path no longer names this file.
        var rotated = false
        var lineReadyAt: ContinuousClock.Instant?
        var lastVerify = ContinuousClock.now

        init(fd: Int32, path: String, device: UInt64, inode: UInt64) {
            self.fd = fd
            self.path = path
            self.device = device
            self.inode = inode
        }

        var readOffset: UInt64 { bufferBase + UInt64(buffer.count) }

        func reset() {
            fingerprint = nil
            fingerprintLength = 0
            consumed = 0
            line = 0
            buffer = []
            bufferBase = 0
            head = 0
            scanFrom = 0
            skipping = false
            lineReadyAt = nil
        }

        deinit { Glibc.close(fd) }
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
    private let logger: Logger
    private var current: OpenFile?
    private var resume: Checkpoint?
    private var pendingPath: String
    private var lastFinished: (device: UInt64, inode: UInt64)?
    private var lastPosition: Checkpoint?
    private var chunk = [UInt8](repeating: 0, count: 256 * 1024)

    /// - Parameters:
    ///   - path: the file to follow (need not exist yet).
    ///   - resume: where to continue (the stored checkpoint), nil to start at offset 0 of `path`.
    ///   - maxLineBytes: longest line returned (default 1 MiB).
    ///   - fingerprintGrace: see ``fingerprintGrace`` (default 1 s).
    public init(path: String, resume: Checkpoint?, maxLineBytes: Int = 1 << 20,
                fingerprintGrace: Duration = .seconds(1), logger: Logger) {
        self.path = path
        self.resume = resume
        self.pendingPath = path
        self.maxLineBytes = maxLineBytes
        self.fingerprintGrace = fingerprintGrace
        self.logger = logger
    }

    /// The position after the last line returned: the checkpoint to write once everything
    /// returned so far is delivered. nil before the first file was opened.
    public var position: Checkpoint? {
        guard let f = current else { return lastPosition }
        return Checkpoint(path: f.path, device: f.device, inode: f.inode, fingerprint: f.fingerprint,
                          fingerprintLength: f.fingerprintLength, offset: f.consumed, line: f.line)
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
            if let event = try openPending() { return event }
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
                f.bufferBase += UInt64(f.buffer.count)
                f.buffer.removeAll(keepingCapacity: true)
                f.head = 0
                f.scanFrom = 0
            }
            if try readMore(f) > 0 { continue }
            // At the end of the file.
            if !f.rotated {
                if let event = try checkTruncation(f) { return event }
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
            lastFinished = (f.device, f.inode)
            pendingPath = successor(of: f)
            logger.info("finished rotated file", metadata: [
                "file.path": "\(f.path)", "file.bytes": "\(f.consumed)", "file.lines": "\(f.line)",
                "next": "\(pendingPath)",
            ])
            current = nil
            if let event = try openPending() { return event }
        }
        return .idle(fileMissing: true)
    }

    // MARK: Opening

    private func openPending() throws(FileProducerError) -> TailEvent? {
        if let cp = resume {
            resume = nil
            if let f = try findCheckpointed(cp) {
                current = f
                logger.info("resuming", metadata: [
                    "file.path": "\(f.path)", "file.offset": "\(f.consumed)", "file.line": "\(f.line)",
                ])
                return .position(position!, .resumed)
            }
            logger.warning("""
                the checkpointed file (device \(cp.device), inode \(cp.inode), last seen at \(cp.path)) is not at \
                \(path) nor among its rotated siblings; starting at offset 0 of \(path)
                """)
        }
        let fd = open(pendingPath, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let code = errno
            if code == ENOENT {
                if pendingPath != path, let finished = lastFinished {
                    // The next rotated file moved on meanwhile: look again from the finished one.
                    let again = successor(device: finished.device, inode: finished.inode)
                    pendingPath = again == pendingPath ? path : again
                }
                return .idle(fileMissing: true)
            }
            throw .fromErrno(code, path: pendingPath, operation: "open")
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let code = errno
            Glibc.close(fd)
            throw .fromErrno(code, path: pendingPath, operation: "fstat")
        }
        let f = OpenFile(fd: fd, path: pendingPath, device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
        current = f
        logger.info("following file", metadata: ["file.path": "\(pendingPath)", "file.inode": "\(f.inode)"])
        return .position(position!, .opened)
    }

    private func findCheckpointed(_ cp: Checkpoint) throws(FileProducerError) -> OpenFile? {
        for candidate in [path] + rotatedSiblings().map(\.path) {
            var st = stat()
            guard stat(candidate, &st) == 0, UInt64(st.st_dev) == cp.device, UInt64(st.st_ino) == cp.inode else { continue }
            let fd = open(candidate, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw .fromErrno(errno, path: candidate, operation: "open") }
            let f = OpenFile(fd: fd, path: candidate, device: cp.device, inode: cp.inode)
            if let fingerprint = cp.fingerprint {
                guard try hashPrefix(f, length: cp.fingerprintLength) == fingerprint,
                      UInt64(st.st_size) >= cp.offset else {
                    logger.warning("file at \(candidate) has the checkpointed inode but other content (truncated or replaced)")
                    return nil
                }
                f.fingerprint = fingerprint
                f.fingerprintLength = cp.fingerprintLength
                f.consumed = cp.offset
                f.line = cp.line
                f.bufferBase = cp.offset
            }
            return f
        }
        return nil
    }

    /// `path.N` siblings (N all digits) with their N, ascending.
    private func rotatedSiblings() -> [(index: Int, path: String)] {
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { String(path[..<$0]) } ?? "."
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard let d = opendir(dir.isEmpty ? "/" : dir) else { return [] }
        defer { closedir(d) }
        var out: [(Int, String)] = []
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name.hasPrefix(base + "."), let n = Int(name.dropFirst(base.count + 1)), n > 0 else { continue }
            out.append((n, slash == nil ? name : dir + "/" + name))
        }
        return out.sorted { $0.0 < $1.0 }
    }

    private func successor(of f: OpenFile) -> String { successor(device: f.device, inode: f.inode) }

    private func successor(device: UInt64, inode: UInt64) -> String {
        let siblings = rotatedSiblings()
        for s in siblings {
            var st = stat()
            guard stat(s.path, &st) == 0, UInt64(st.st_dev) == device, UInt64(st.st_ino) == inode else { continue }
            if s.index > 1, let newer = siblings.first(where: { $0.index == s.index - 1 }) { return newer.path }
            return path
        }
        return path
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

    private func readMore(_ f: OpenFile) throws(FileProducerError) -> Int {
        while true {
            let offset = f.readOffset
            let n = chunk.withUnsafeMutableBytes { pread(f.fd, $0.baseAddress, $0.count, off_t(offset)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .fromErrno(errno, path: f.path, operation: "read at byte \(offset) of")
            }
            if n > 0 { f.buffer += chunk[0..<n] }
            return n
        }
    }

    private func emit(_ f: OpenFile, newlineAt nl: Int) -> TailEvent {
        let end = f.bufferBase + UInt64(nl) + 1
        var line = TailedLine(bytes: [], start: f.consumed, end: end, number: f.line + 1,
                              fingerprint: f.fingerprint!, path: f.path)
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
            f.buffer.removeFirst(f.head)
            f.bufferBase += UInt64(f.head)
            f.head = 0
            f.scanFrom = 0
        }
        return event
    }

    private func emitUnterminated(_ f: OpenFile) -> TailEvent {
        let end = f.readOffset
        var line = TailedLine(bytes: [], start: f.consumed, end: end, number: f.line + 1,
                              fingerprint: f.fingerprint!, path: f.path)
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
        f.bufferBase = end
        f.buffer.removeAll(keepingCapacity: true)
        f.head = 0
        f.scanFrom = 0
        return event
    }

    // MARK: Identity

    private func hashPrefix(_ f: OpenFile, length: Int) throws(FileProducerError) -> String? {
        var bytes = [UInt8](repeating: 0, count: length)
        var got = 0
        while got < length {
            let n = bytes.withUnsafeMutableBytes { pread(f.fd, $0.baseAddress! + got, length - got, off_t(got)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .fromErrno(errno, path: f.path, operation: "read first bytes of")
            }
            if n == 0 { return nil }
            got += n
        }
        return SHA256.hash(data: bytes).map { String(format2: $0) }.joined()
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

    private func checkTruncation(_ f: OpenFile) throws(FileProducerError) -> TailEvent? {
        var st = stat()
        guard fstat(f.fd, &st) == 0 else { throw .fromErrno(errno, path: f.path, operation: "fstat") }
        var truncated = UInt64(st.st_size) < f.readOffset
        if !truncated, let fingerprint = f.fingerprint, f.lastVerify.duration(to: .now) >= .seconds(1) {
            f.lastVerify = .now
            truncated = try hashPrefix(f, length: f.fingerprintLength) != fingerprint
        }
        guard truncated else { return nil }
        logger.warning("file truncated or rewritten; reading it again from offset 0 as a new file", metadata: [
            "file.path": "\(f.path)", "file.size": "\(st.st_size)", "file.offset": "\(f.consumed)",
        ])
        f.reset()
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
