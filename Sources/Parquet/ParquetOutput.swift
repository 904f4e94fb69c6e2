#if canImport(Glibc)
import Glibc

private func systemClose(_ fd: Int32) -> Int32 { close(fd) }
private func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }
#elseif canImport(Darwin)
import Darwin

private func systemClose(_ fd: Int32) -> Int32 { close(fd) }
private func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }
#endif

/// Where encoded bytes go.
///
/// The writer only ever calls `write` sequentially and never seeks back, so an output may hash
/// or stream the bytes as they pass (the engine wraps a file with a SHA-256 hasher).
public protocol ParquetOutput: AnyObject {
    /// Appends `bytes`. The buffer is only valid for the duration of the call.
    func write(_ bytes: UnsafeRawBufferPointer) throws
}

/// Collects the file in memory (tests, small objects).
public final class ParquetMemoryOutput: ParquetOutput {
    /// Everything written so far.
    public private(set) var bytes: [UInt8] = []

    /// Creates an empty output.
    public init() {}

    /// Appends to `bytes`.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        self.bytes.append(contentsOf: bytes)
    }
}

/// A new file opened with `O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC`, mode 0600, with a write buffer.
///
/// Call `sync()` (flush + `fsync`) before trusting the bytes are durable, then `close()`.
/// `deinit` closes the descriptor without flushing if `close()` was never called.
public final class ParquetFileOutput: ParquetOutput {
    /// The path given at creation.
    public let path: String
    private var fd: Int32
    private let buffer: ByteBuffer
    private let bufferLimit: Int

    /// Creates the file; fails if it already exists.
    ///
    /// - Parameters:
    ///   - path: the file to create.
    ///   - bufferSize: bytes collected before a `write(2)`; larger writes go straight through.
    /// - Throws: `ParquetError` with code `.io` and the `errno` of `open(2)`.
    public init(path: String, bufferSize: Int = 1 << 20) throws {
        self.path = path
        let fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let e = errno
            throw ParquetError(.io, "open(2) failed: \(String(cString: strerror(e)))", path: path, systemError: e)
        }
        self.fd = fd
        self.bufferLimit = max(bufferSize, 4096)
        self.buffer = ByteBuffer(capacity: self.bufferLimit)
    }

    deinit {
        if fd >= 0 {
            _ = systemClose(fd)
        }
    }

    /// Appends bytes, buffering small writes.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard fd >= 0 else {
            throw ParquetError(.writerClosed, "write after close", path: path)
        }
        if buffer.count + bytes.count > bufferLimit {
            try flush()
        }
        if bytes.count >= bufferLimit {
            try writeAll(bytes)
        } else {
            buffer.append(bytes)
        }
    }

    /// Writes buffered bytes to the kernel.
    public func flush() throws {
        guard buffer.count > 0 else { return }
        try writeAll(buffer.bytes)
        buffer.removeAll()
    }

    /// Flushes and calls `fsync(2)`.
    public func sync() throws {
        try flush()
        guard fsync(fd) == 0 else {
            let e = errno
            throw ParquetError(.io, "fsync(2) failed: \(String(cString: strerror(e)))", path: path, systemError: e)
        }
    }

    /// Flushes and closes the descriptor. Further writes fail.
    public func close() throws {
        guard fd >= 0 else { return }
        defer {
            _ = systemClose(fd)
            fd = -1
        }
        try flush()
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        guard var p = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let n = systemWrite(fd, p, left)
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                throw ParquetError(.io, "write(2) failed: \(String(cString: strerror(e)))", path: path, systemError: e)
            }
            p += n
            left -= n
        }
    }
}
