#if canImport(Glibc)
import Glibc
#endif

/// Appends whole lines to a log file and rotates it the way logrotate's default (`create`)
/// mode does: `app.log.(keep-1)` → `app.log.keep` (the oldest is deleted) ... `app.log.1` →
/// `app.log.2`, `app.log` → `app.log.1`, then a new, empty `app.log`.
///
/// Each ``append(_:)`` call is one `write(2)` of complete lines (a concurrent reader may still
/// see a write half done; the tailer waits for the newline). Used from one thread; not `Sendable`.
public final class LogFileWriter {
    /// The file written to.
    public let path: String
    private let rotateBytes: UInt64?
    private let keep: Int
    private var fd: Int32 = -1
    private var size: UInt64 = 0
    /// Rotations done so far.
    public private(set) var rotations = 0

    /// Opens (creating if needed, mode 0644) `path` for appending.
    /// - Parameters:
    ///   - rotateBytes: rotate before a write that would take the file past this size (a file
    ///     always takes at least one write, so a line longer than this still lands). nil: never.
    ///   - keep: rotated files kept (`app.log.1` ... `app.log.keep`), at least 1.
    /// - Throws: ``FileProducerError`` naming the path.
    public init(path: String, rotateBytes: UInt64? = nil, keep: Int = 5) throws(FileProducerError) {
        self.path = path
        self.rotateBytes = rotateBytes
        self.keep = max(1, keep)
        try open()
    }

    deinit { close() }

    private func open() throws(FileProducerError) {
        fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .fromErrno(errno, path: path, operation: "open for append") }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .fromErrno(errno, path: path, operation: "fstat") }
        size = UInt64(st.st_size)
    }

    /// Appends `lines` (each gets a newline), rotating first when the write would pass the limit.
    /// - Throws: ``FileProducerError`` naming the path.
    public func append(_ lines: [[UInt8]]) throws(FileProducerError) {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(lines.reduce(0) { $0 + $1.count + 1 })
        for line in lines {
            if let limit = rotateBytes, size + UInt64(buffer.count + line.count + 1) > limit, size + UInt64(buffer.count) > 0 {
                try write(buffer)
                buffer.removeAll(keepingCapacity: true)
                try rotate()
            }
            buffer += line
            buffer.append(0x0A)
        }
        try write(buffer)
    }

    private func write(_ bytes: [UInt8]) throws(FileProducerError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .fromErrno(errno, path: path, operation: "write")
            }
            done += n
        }
        size += UInt64(bytes.count)
    }

    /// Rotates now (see the type's description).
    /// - Throws: ``FileProducerError`` naming the file that could not be renamed or created.
    public func rotate() throws(FileProducerError) {
        close()
        let oldest = "\(path).\(keep)"
        if unlink(oldest) != 0 && errno != ENOENT { throw .fromErrno(errno, path: oldest, operation: "delete") }
        for k in stride(from: keep - 1, through: 1, by: -1) {
            let from = "\(path).\(k)"
            if rename(from, "\(path).\(k + 1)") != 0 && errno != ENOENT {
                throw .fromErrno(errno, path: from, operation: "rename")
            }
        }
        if rename(path, "\(path).1") != 0 && errno != ENOENT { throw .fromErrno(errno, path: path, operation: "rename") }
        rotations += 1
        try open()
    }

    /// Closes the file. Idempotent.
    public func close() {
        if fd >= 0 { _ = Glibc.close(fd) }
        fd = -1
    }
}
