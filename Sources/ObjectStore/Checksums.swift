import Crypto
import Foundation

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by `x-amz-checksum-crc32c`
/// (RFC 3720 appendix B.4). Slicing-by-8 software implementation.
public struct CRC32C: Sendable {
    /// Eight 256-entry tables, flattened: entry `i` of table `k` is at `k * 256 + i`.
    private static let table: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 8 * 256)
        for i in 0..<256 {
            var crc = UInt32(i)
            for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
            table[i] = crc
        }
        for k in 1..<8 {
            for i in 0..<256 {
                let previous = table[(k - 1) * 256 + i]
                table[k * 256 + i] = (previous >> 8) ^ table[Int(previous & 0xff)]
            }
        }
        return table
    }()

    private var state: UInt32 = 0xFFFF_FFFF

    public init() {}

    /// Feeds more bytes.
    public mutating func update(_ buffer: UnsafeRawBufferPointer) {
        var crc = state
        Self.table.withUnsafeBufferPointer { t in
            var index = 0
            let count = buffer.count
            while count &- index >= 8 {
                let low = crc ^ buffer.loadUnaligned(fromByteOffset: index, as: UInt32.self).littleEndian
                crc = t[1792 &+ Int(low & 0xff)] ^ t[1536 &+ Int((low >> 8) & 0xff)]
                    ^ t[1280 &+ Int((low >> 16) & 0xff)] ^ t[1024 &+ Int(low >> 24)]
                    ^ t[768 &+ Int(buffer[index &+ 4])] ^ t[512 &+ Int(buffer[index &+ 5])]
                    ^ t[256 &+ Int(buffer[index &+ 6])] ^ t[Int(buffer[index &+ 7])]
                index &+= 8
            }
            while index < count {
                crc = t[Int((crc ^ UInt32(buffer[index])) & 0xff)] ^ (crc >> 8)
                index &+= 1
            }
        }
        state = crc
    }

    /// Feeds more bytes.
    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// The CRC of everything fed so far.
    public var value: UInt32 { state ^ 0xFFFF_FFFF }

    /// The big-endian bytes, base64-encoded, as the `x-amz-checksum-crc32c` header carries them.
    public var base64: String {
        let v = value
        return Data([UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)])
            .base64EncodedString()
    }
}

/// The digests of one request body, computed in one pass.
struct BodyDigests: Sendable {
    /// Hex SHA-256, for `x-amz-content-sha256`.
    var sha256Hex: String
    /// Base64 SHA-256, for `x-amz-checksum-sha256`.
    var sha256Base64: String
    /// Base64 MD5, for `Content-MD5`; nil unless requested.
    var md5Base64: String?
    /// Base64 CRC32C, for `x-amz-checksum-crc32c`; nil unless requested.
    var crc32cBase64: String?

    /// Reads the body once and computes SHA-256 plus the requested part checksum.
    static func compute(_ body: ObjectBody, checksum: S3Configuration.PartChecksum?) throws -> BodyDigests {
        var sha = SHA256()
        var md5: Insecure.MD5? = checksum == .md5 ? Insecure.MD5() : nil
        var crc: CRC32C? = checksum == .crc32c ? CRC32C() : nil
        try forEachChunk(of: body) { chunk in
            sha.update(bufferPointer: chunk)
            md5?.update(bufferPointer: chunk)
            crc?.update(chunk)
        }
        let shaDigest = Array(sha.finalize())
        return BodyDigests(sha256Hex: SigV4Signer.hex(shaDigest), sha256Base64: Data(shaDigest).base64EncodedString(),
                           md5Base64: md5.map { Data(Array($0.finalize())).base64EncodedString() },
                           crc32cBase64: crc?.base64)
    }

    /// Calls `body` with successive chunks (≤ 1 MiB) of the object body.
    static func forEachChunk(of body: ObjectBody, _ visit: (UnsafeRawBufferPointer) throws -> Void) throws {
        switch body {
        case .bytes(let bytes):
            try bytes.withUnsafeBytes { try visit($0) }
        case .fileRange(let path, let offset, let length):
            let reader = try FileRangeReader(path: path, offset: offset, length: length)
            defer { reader.close() }
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let n = try buffer.withUnsafeMutableBytes { try reader.read(into: $0) }
                if n == 0 { break }
                try buffer.withUnsafeBytes { try visit(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            }
        }
    }
}

/// Reads a byte range of a file with `pread(2)`; used to stream part bodies without copying
/// them into memory. Not thread-safe; one reader per request.
final class FileRangeReader {
    private var fd: Int32
    let path: String
    let offset: Int64
    let length: Int64
    private(set) var position: Int64 = 0

    init(path: String, offset: Int64, length: Int64) throws {
        self.path = path
        self.offset = offset
        self.length = length
        fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let e = errno
            throw ObjectStoreError(kind: e == ENOENT ? .notFound : .permanent, operation: "ReadFile",
                                   message: "open \(path): \(String(cString: strerror(e)))")
        }
    }

    /// Reads up to `buffer.count` bytes at the current position; 0 at the end of the range.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let want = Int(min(Int64(buffer.count), length - position))
        if want <= 0 { return 0 }
        while true {
            let n = pread(fd, buffer.baseAddress, want, off_t(offset + position))
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno
                throw ObjectStoreError(kind: .permanent, operation: "ReadFile",
                                       message: "pread \(path): \(String(cString: strerror(e)))")
            }
            if n == 0 {
                throw ObjectStoreError(kind: .permanent, operation: "ReadFile",
                                       message: "\(path) ended at \(offset + position), before \(offset + length)")
            }
            position += Int64(n)
            return n
        }
    }

    /// Moves to `position` bytes into the range (for curl rewinds on retry).
    func seek(to position: Int64) -> Bool {
        guard position >= 0 && position <= length else { return false }
        self.position = position
        return true
    }

    func close() {
        if fd >= 0 {
            _ = Glibc.close(fd)
            fd = -1
        }
    }

    deinit { close() }
}
