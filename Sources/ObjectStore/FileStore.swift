import CXattr
import Crypto
import Foundation

/// ``ObjectStore`` on a local directory (`file:///dir`), with S3's semantics where a
/// filesystem can give them:
///
/// - A key `a/b/c` is the file `<root>/a/b/c`. Objects appear atomically: data goes to a temp
///   file under `<root>/.tidemark-tmp`, is fsynced, gets its metadata (etag, user metadata) as
///   the `user.tidemark` extended attribute, and is then `rename(2)`d into place, or `link(2)`ed
///   for `ifNoneMatch` (so an existing key fails with `EEXIST` → ``ObjectStoreError/Kind/alreadyExists``).
///   The parent directory is fsynced afterwards.
/// - Multipart uploads live in `<root>/.tidemark-uploads/<uploadID>/` (one file per part plus
///   `upload.json`); complete concatenates the parts into a temp file and links it into place;
///   abort removes the folder.
/// - Listings never show `.tidemark-*` entries; keys may not start with `.tidemark-`.
/// - Unlike S3, a key cannot be both an object and a "directory" of other keys (`a` and `a/b`).
///
/// The filesystem must support `user.*` extended attributes (ext4, xfs, btrfs; tmpfs since
/// Linux 6.6); ``init(root:)`` checks.
public final class FileStore: ObjectStore {
    /// The root directory (absolute, no trailing slash).
    public let root: String
    public let capabilities = ObjectStoreCapabilities(conditionalWrites: true)

    static let uploadsFolder = ".tidemark-uploads"
    static let tempFolder = ".tidemark-tmp"
    static let hiddenPrefix = ".tidemark-"
    private static let attributeName = "user.tidemark"

    /// Stored in the `user.tidemark` attribute of objects and parts.
    private struct Attributes: Codable {
        var etag: String
        var metadata: [String: String]
        var checksum: String?
    }

    /// Stored in `upload.json` of each multipart upload.
    private struct UploadRecord: Codable {
        var key: String
        var metadata: [String: String]
        var initiated: Date
    }

    /// Opens (creating if needed) a store rooted at `root`.
    /// - Throws: ``ObjectStoreError`` when the directory cannot be created or the filesystem
    ///   lacks user extended attributes.
    public init(root: String) throws {
        guard root.hasPrefix("/") else {
            throw ObjectStoreError(kind: .invalidArgument, operation: "OpenFileStore", bucket: root,
                                   message: "the root must be an absolute path")
        }
        var normalized = root
        while normalized.count > 1 && normalized.hasSuffix("/") { normalized.removeLast() }
        self.root = normalized
        for folder in ["", "/" + Self.tempFolder, "/" + Self.uploadsFolder] {
            do {
                try FileManager.default.createDirectory(atPath: normalized + folder, withIntermediateDirectories: true)
            } catch {
                throw ObjectStoreError(kind: .permanent, operation: "OpenFileStore", bucket: normalized,
                                       message: "cannot create \(normalized + folder): \(error)")
            }
        }
        // Probe xattr support once, so a missing feature fails here rather than mid-upload.
        let probe = "\(normalized)/\(Self.tempFolder)/probe-\(UUID().uuidString)"
        defer { unlink(probe) }
        let fd = open(probe, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
        if fd >= 0 { Glibc.close(fd) }
        if fd < 0 || setxattr(probe, Self.attributeName, "{}", 2, 0) != 0 {
            let e = errno
            throw ObjectStoreError(kind: .permanent, operation: "OpenFileStore", bucket: normalized,
                                   message: "filesystem at \(normalized) does not support user xattrs: \(Self.errnoText(e))")
        }
    }

    // MARK: Paths and errors

    private func error(_ operation: String, key: String? = nil, uploadID: String? = nil, errno e: Int32, _ what: String)
        -> ObjectStoreError
    {
        let kind: ObjectStoreError.Kind =
            switch e {
            case ENOENT, ENOTDIR: .notFound
            case EACCES, EPERM, EROFS: .accessDenied
            case EEXIST: .alreadyExists
            case EINTR, EAGAIN: .transient
            default: .permanent
            }
        return ObjectStoreError(kind: kind, operation: operation, bucket: root, key: key, uploadID: uploadID,
                                s3Code: "errno \(e)", message: "\(what): \(Self.errnoText(e))")
    }

    private func invalid(_ operation: String, key: String?, uploadID: String? = nil, code: String? = nil, _ message: String)
        -> ObjectStoreError
    {
        // With an S3 error code this mirrors a 400 that S3 would return, which S3Store reports
        // as `permanent`; keep the two stores' kinds the same.
        ObjectStoreError(kind: code == nil ? .invalidArgument : .permanent, operation: operation, bucket: root, key: key,
                         uploadID: uploadID, s3Code: code, message: message)
    }

    private static func errnoText(_ e: Int32) -> String { String(cString: strerror(e)) }

    /// Checks that `key` maps to a file path inside the root and returns that path.
    private func path(for key: String, _ operation: String) throws -> String {
        let segments = key.split(separator: "/", omittingEmptySubsequences: false)
        guard !key.isEmpty, key.utf8.count <= 1024, !key.contains("\0"), !key.hasPrefix(Self.hiddenPrefix),
            segments.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." && $0.utf8.count <= 255 })
        else {
            throw invalid(operation, key: key, """
                key not storable in a file store (needs non-empty '/'-separated segments other than '.' and '..', \
                ≤ 255 bytes each, not starting with \(Self.hiddenPrefix))
                """)
        }
        return root + "/" + key
    }

    private func uploadDirectory(_ uploadID: String, key: String, _ operation: String) throws -> (String, UploadRecord) {
        guard !uploadID.isEmpty, uploadID.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }) else {
            throw invalid(operation, key: key, uploadID: uploadID, "malformed upload id")
        }
        let directory = "\(root)/\(Self.uploadsFolder)/\(uploadID)"
        guard let data = FileManager.default.contents(atPath: directory + "/upload.json"),
            let record = try? JSONDecoder().decode(UploadRecord.self, from: data), record.key == key
        else {
            throw ObjectStoreError(kind: .notFound, operation: operation, bucket: root, key: key, uploadID: uploadID,
                                   s3Code: "NoSuchUpload", message: "no such upload for this key")
        }
        return (directory, record)
    }

    // MARK: Durable writes

    /// Writes `chunks` to a fresh temp file, fsyncs it, and sets its attributes. Returns the
    /// temp path, the size and the MD5 digest.
    private func writeTemp(in directory: String, attributes: (_ md5: [UInt8], _ crc: String) throws -> Attributes,
                           _ operation: String, key: String, write: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void)
        throws -> (path: String, size: Int64, attributes: Attributes)
    {
        let temp = "\(directory)/tmp-\(UUID().uuidString)"
        let fd = open(temp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw error(operation, key: key, errno: errno, "create \(temp)") }
        var ok = false
        defer {
            Glibc.close(fd)
            if !ok { unlink(temp) }
        }
        var md5 = Insecure.MD5()
        var crc = CRC32C()
        var size: Int64 = 0
        try write { chunk in
            md5.update(bufferPointer: chunk)
            crc.update(chunk)
            var done = 0
            while done < chunk.count {
                let n = Glibc.write(fd, chunk.baseAddress! + done, chunk.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw error(operation, key: key, errno: errno, "write \(temp)")
                }
                done += n
            }
            size += Int64(chunk.count)
        }
        guard fsync(fd) == 0 else { throw error(operation, key: key, errno: errno, "fsync \(temp)") }
        let attrs = try attributes(Array(md5.finalize()), crc.base64)
        let json = try JSONEncoder().encode(attrs)
        let rc = json.withUnsafeBytes { fsetxattr(fd, Self.attributeName, $0.baseAddress, $0.count, 0) }
        guard rc == 0 else { throw error(operation, key: key, errno: errno, "set metadata on \(temp)") }
        ok = true
        return (temp, size, attrs)
    }

    /// Moves a finished temp file to `destination`: `link(2)` when `exclusive` (fails with
    /// `alreadyExists` if the key exists), else `rename(2)`; then fsyncs the directory.
    private func publish(_ temp: String, to destination: String, exclusive: Bool, _ operation: String, key: String) throws {
        defer { unlink(temp) }
        let parent = (destination as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        } catch {
            throw ObjectStoreError(kind: .permanent, operation: operation, bucket: root, key: key,
                                   message: "cannot create \(parent) (is a prefix of this key an object?): \(error)")
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: destination, isDirectory: &isDirectory), isDirectory.boolValue {
            throw ObjectStoreError(kind: .permanent, operation: operation, bucket: root, key: key,
                                   message: "other keys use \(key)/ as a prefix; a file store cannot hold both")
        }
        if exclusive {
            if link(temp, destination) != 0 {
                let e = errno
                if e == EEXIST {
                    throw ObjectStoreError(kind: .alreadyExists, operation: operation, bucket: root, key: key,
                                           httpStatus: nil, s3Code: "PreconditionFailed", message: "the key exists")
                }
                throw error(operation, key: key, errno: e, "link into \(destination)")
            }
        } else if rename(temp, destination) != 0 {
            throw error(operation, key: key, errno: errno, "rename into \(destination)")
        }
        try fsyncDirectory(parent, operation, key: key)
    }

    private func fsyncDirectory(_ directory: String, _ operation: String, key: String?) throws {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw error(operation, key: key, errno: errno, "open \(directory)") }
        defer { Glibc.close(fd) }
        guard fsync(fd) == 0 else { throw error(operation, key: key, errno: errno, "fsync \(directory)") }
    }

    private func readAttributes(_ path: String) -> Attributes? {
        var buffer = [UInt8](repeating: 0, count: 8192)
        let n = buffer.withUnsafeMutableBytes { getxattr(path, Self.attributeName, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        return try? JSONDecoder().decode(Attributes.self, from: Data(buffer[0..<n]))
    }

    private func validateMetadata(_ metadata: [String: String], _ operation: String, key: String) throws
        -> [String: String]
    {
        var lowered: [String: String] = [:]
        var total = 0
        for (name, value) in metadata {
            lowered[name.lowercased()] = value
            total += name.utf8.count + value.utf8.count
        }
        // S3: "the user-defined metadata is limited to 2 KB in size" (Working with object metadata).
        guard total <= 2048 else { throw invalid(operation, key: key, "user metadata over 2 KB") }
        return lowered
    }

    // MARK: ObjectStore

    public func createMultipartUpload(key: String, metadata: [String: String]) throws -> String {
        _ = try path(for: key, "CreateMultipartUpload")
        let record = UploadRecord(key: key, metadata: try validateMetadata(metadata, "CreateMultipartUpload", key: key),
                                  initiated: Date())
        let uploadID = UUID().uuidString.lowercased()
        let directory = "\(root)/\(Self.uploadsFolder)/\(uploadID)"
        guard mkdir(directory, 0o755) == 0 else {
            throw error("CreateMultipartUpload", key: key, errno: errno, "mkdir \(directory)")
        }
        let data = try JSONEncoder().encode(record)
        guard FileManager.default.createFile(atPath: directory + "/upload.json.tmp", contents: data),
            rename(directory + "/upload.json.tmp", directory + "/upload.json") == 0
        else { throw error("CreateMultipartUpload", key: key, errno: errno, "write \(directory)/upload.json") }
        try fsyncDirectory(directory, "CreateMultipartUpload", key: key)
        try fsyncDirectory("\(root)/\(Self.uploadsFolder)", "CreateMultipartUpload", key: key)
        return uploadID
    }

    private static func partName(_ number: Int) -> String { String(format: "part-%05d", number) }

    public func uploadPart(key: String, uploadID: String, partNumber: Int, data: ObjectBody) throws -> UploadedPart {
        guard (1...S3Limits.maximumPartCount).contains(partNumber) else {
            throw invalid("UploadPart", key: key, uploadID: uploadID, "part number \(partNumber) outside 1...10000")
        }
        let (directory, _) = try uploadDirectory(uploadID, key: key, "UploadPart")
        let (temp, size, attrs) = try writeTemp(
            in: directory, attributes: { md5, crc in Attributes(etag: SigV4Signer.hex(md5), metadata: [:], checksum: crc) },
            "UploadPart", key: key
        ) { sink in try BodyDigests.forEachChunk(of: data, sink) }
        guard rename(temp, "\(directory)/\(Self.partName(partNumber))") == 0 else {
            let e = errno
            unlink(temp)
            throw error("UploadPart", key: key, uploadID: uploadID, errno: e, "rename part into \(directory)")
        }
        try fsyncDirectory(directory, "UploadPart", key: key)
        return UploadedPart(partNumber: partNumber, etag: attrs.etag, size: size, checksum: attrs.checksum)
    }

    public func completeMultipartUpload(key: String, uploadID: String, parts: [UploadedPart], ifNoneMatch: Bool) throws
        -> String
    {
        let op = "CompleteMultipartUpload"
        let destination = try path(for: key, op)
        let (directory, record) = try uploadDirectory(uploadID, key: key, op)
        guard !parts.isEmpty else { throw invalid(op, key: key, uploadID: uploadID, code: "MalformedXML", "no parts") }
        // The same checks S3 makes: ascending part numbers, each part present with the
        // given etag, every part but the last at least 5 MiB.
        var partPaths: [String] = []
        var md5s: [UInt8] = []
        for index in parts.indices.dropFirst() where parts[index].partNumber <= parts[index - 1].partNumber {
            throw invalid(op, key: key, uploadID: uploadID, code: "InvalidPartOrder", "parts must be ascending")
        }
        for (index, part) in parts.enumerated() {
            let partPath = "\(directory)/\(Self.partName(part.partNumber))"
            var info = stat()
            guard stat(partPath, &info) == 0, let attrs = readAttributes(partPath), attrs.etag == part.etag else {
                throw invalid(op, key: key, uploadID: uploadID, code: "InvalidPart",
                              "part \(part.partNumber) missing or etag mismatch")
            }
            if index < parts.count - 1 && Int64(info.st_size) < S3Limits.minimumPartSize {
                throw invalid(op, key: key, uploadID: uploadID, code: "EntityTooSmall",
                              "part \(part.partNumber) is smaller than 5 MiB")
            }
            partPaths.append(partPath)
            md5s += Self.bytes(fromHex: attrs.etag)
        }
        if ifNoneMatch && FileManager.default.fileExists(atPath: destination) {
            throw ObjectStoreError(kind: .alreadyExists, operation: op, bucket: root, key: key, uploadID: uploadID,
                                   s3Code: "PreconditionFailed", message: "the key exists")
        }
        // S3's multipart etag: MD5 of the concatenated binary part MD5s, then "-<part count>".
        let etag = SigV4Signer.hex(Insecure.MD5.hash(data: md5s)) + "-\(parts.count)"
        let (temp, _, _) = try writeTemp(
            in: "\(root)/\(Self.tempFolder)",
            attributes: { _, _ in Attributes(etag: etag, metadata: record.metadata, checksum: nil) }, op, key: key
        ) { sink in
            for partPath in partPaths {
                let size = try Self.fileSize(partPath)
                try BodyDigests.forEachChunk(of: .fileRange(path: partPath, offset: 0, length: size), sink)
            }
        }
        try publish(temp, to: destination, exclusive: ifNoneMatch, op, key: key)
        try? FileManager.default.removeItem(atPath: directory)
        return etag
    }

    public func abortMultipartUpload(key: String, uploadID: String) throws {
        let (directory, _) = try uploadDirectory(uploadID, key: key, "AbortMultipartUpload")
        do {
            try FileManager.default.removeItem(atPath: directory)
        } catch {
            throw ObjectStoreError(kind: .permanent, operation: "AbortMultipartUpload", bucket: root, key: key,
                                   uploadID: uploadID, message: "cannot remove \(directory): \(error)")
        }
    }

    public func listMultipartUploads(prefix: String) throws -> [MultipartUploadInfo] {
        let folder = "\(root)/\(Self.uploadsFolder)"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        var uploads: [MultipartUploadInfo] = []
        for name in names {
            guard let data = FileManager.default.contents(atPath: "\(folder)/\(name)/upload.json"),
                let record = try? JSONDecoder().decode(UploadRecord.self, from: data), record.key.hasPrefix(prefix)
            else { continue }
            uploads.append(MultipartUploadInfo(key: record.key, uploadID: name, initiated: record.initiated))
        }
        // S3 order: by key, then by initiation time.
        return uploads.sorted {
            $0.key == $1.key ? ($0.initiated ?? .distantPast) < ($1.initiated ?? .distantPast)
                : Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8))
        }
    }

    public func listParts(key: String, uploadID: String) throws -> [UploadedPart] {
        let (directory, _) = try uploadDirectory(uploadID, key: key, "ListParts")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var parts: [UploadedPart] = []
        for name in names where name.hasPrefix("part-") {
            guard let number = Int(name.dropFirst(5)), let attrs = readAttributes("\(directory)/\(name)"),
                let size = try? Self.fileSize("\(directory)/\(name)")
            else { continue }
            parts.append(UploadedPart(partNumber: number, etag: attrs.etag, size: size, checksum: attrs.checksum))
        }
        return parts.sorted { $0.partNumber < $1.partNumber }
    }

    public func putObject(key: String, data: ObjectBody, metadata: [String: String], ifNoneMatch: Bool) throws -> String {
        let destination = try path(for: key, "PutObject")
        let metadata = try validateMetadata(metadata, "PutObject", key: key)
        let (temp, _, attrs) = try writeTemp(
            in: "\(root)/\(Self.tempFolder)",
            attributes: { md5, _ in Attributes(etag: SigV4Signer.hex(md5), metadata: metadata, checksum: nil) },
            "PutObject", key: key
        ) { sink in try BodyDigests.forEachChunk(of: data, sink) }
        try publish(temp, to: destination, exclusive: ifNoneMatch, "PutObject", key: key)
        return attrs.etag
    }

    public func headObject(key: String) throws -> ObjectInfo? {
        let path = try path(for: key, "HeadObject")
        var info = stat()
        guard stat(path, &info) == 0 else {
            let e = errno
            if e == ENOENT || e == ENOTDIR { return nil }
            throw error("HeadObject", key: key, errno: e, "stat \(path)")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        let attrs = readAttributes(path)
        let modified = Date(timeIntervalSince1970: TimeInterval(info.st_mtim.tv_sec) + TimeInterval(info.st_mtim.tv_nsec) / 1e9)
        return ObjectInfo(key: key, size: Int64(info.st_size), etag: attrs?.etag, lastModified: modified,
                          metadata: attrs?.metadata ?? [:])
    }

    public func getObject(key: String, range: ClosedRange<Int64>?) throws -> [UInt8] {
        let path = try path(for: key, "GetObject")
        let size: Int64
        do { size = try Self.fileSize(path) } catch let e as ObjectStoreError {
            throw ObjectStoreError(kind: e.kind, operation: "GetObject", bucket: root, key: key, s3Code: "NoSuchKey",
                                   message: e.message)
        }
        var lower: Int64 = 0
        var upper = size - 1
        if let range {
            guard range.lowerBound >= 0, range.lowerBound < size else {
                throw ObjectStoreError(kind: .permanent, operation: "GetObject", bucket: root, key: key,
                                       s3Code: "InvalidRange", message: "range starts past the object's \(size) bytes")
            }
            lower = range.lowerBound
            upper = min(range.upperBound, size - 1)
        }
        var result: [UInt8] = []
        result.reserveCapacity(Int(max(0, upper - lower + 1)))
        try BodyDigests.forEachChunk(of: .fileRange(path: path, offset: lower, length: max(0, upper - lower + 1))) {
            result.append(contentsOf: $0)
        }
        return result
    }

    public func listObjects(prefix: String, startAfter: String?, continuationToken: String?, maxKeys: Int) throws
        -> ObjectPage
    {
        // Walk only the deepest directory the prefix names, collect regular files, sort in
        // UTF-8 byte order like S3. The continuation token is the base64 of the last key.
        var after = startAfter.map { Array($0.utf8) }
        if let continuationToken {
            guard let data = Data(base64Encoded: continuationToken) else {
                throw invalid("ListObjectsV2", key: nil, "malformed continuation token")
            }
            after = Array(data)
        }
        let base = prefix.contains("/") ? String(prefix[..<prefix.lastIndex(of: "/")!]) : ""
        var keys: [[UInt8]] = []
        collect(directory: base.isEmpty ? root : "\(root)/\(base)", keyPrefix: base.isEmpty ? "" : base + "/",
                into: &keys)
        let prefixBytes = Array(prefix.utf8)
        var selected = keys.filter { key in
            key.starts(with: prefixBytes) && (after.map { $0.lexicographicallyPrecedes(key) } ?? true)
        }
        selected.sort { $0.lexicographicallyPrecedes($1) }
        let limit = max(1, min(maxKeys, 1000))
        let page = selected.prefix(limit)
        var objects: [ObjectInfo] = []
        for keyBytes in page {
            let key = String(decoding: keyBytes, as: UTF8.self)
            var info = stat()
            guard stat(root + "/" + key, &info) == 0 else { continue }  // deleted meanwhile
            let modified = Date(timeIntervalSince1970: TimeInterval(info.st_mtim.tv_sec))
            objects.append(ObjectInfo(key: key, size: Int64(info.st_size), etag: readAttributes(root + "/" + key)?.etag,
                                      lastModified: modified, metadata: [:]))
        }
        let next = selected.count > limit ? Data(page.last!).base64EncodedString() : nil
        return ObjectPage(objects: objects, nextContinuationToken: next)
    }

    private func collect(directory: String, keyPrefix: String, into keys: inout [[UInt8]]) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names {
            if keyPrefix.isEmpty && name.hasPrefix(Self.hiddenPrefix) { continue }
            let path = "\(directory)/\(name)"
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFDIR: collect(directory: path, keyPrefix: keyPrefix + name + "/", into: &keys)
            case S_IFREG: keys.append(Array((keyPrefix + name).utf8))
            default: continue
            }
        }
    }

    public func deleteObject(key: String) throws {
        let path = try path(for: key, "DeleteObject")
        if unlink(path) != 0 {
            let e = errno
            if e == ENOENT || e == ENOTDIR { return }
            throw error("DeleteObject", key: key, errno: e, "unlink \(path)")
        }
        // Remove directories the key left empty, so a later key can reuse the name.
        var parent = (path as NSString).deletingLastPathComponent
        while parent.count > root.count && rmdir(parent) == 0 {
            parent = (parent as NSString).deletingLastPathComponent
        }
        try fsyncDirectory(parent, "DeleteObject", key: key)
    }

    // MARK: Helpers

    private static func fileSize(_ path: String) throws -> Int64 {
        var info = stat()
        guard stat(path, &info) == 0 else {
            let e = errno
            throw ObjectStoreError(kind: e == ENOENT || e == ENOTDIR ? .notFound : .permanent, operation: "Stat",
                                   message: "stat \(path): \(errnoText(e))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw ObjectStoreError(kind: .notFound, operation: "Stat", message: "\(path) is not a file")
        }
        return Int64(info.st_size)
    }

    private static func bytes(fromHex hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var iterator = hex.utf8.makeIterator()
        while let high = iterator.next(), let low = iterator.next() {
            func value(_ c: UInt8) -> UInt8 { c >= 0x61 ? c - 0x61 + 10 : (c >= 0x41 ? c - 0x41 + 10 : c - 0x30) }
            out.append(value(high) << 4 | value(low))
        }
        return out
    }
}
