/// The Kafka record headers `etl-produce` puts on every record, naming the line's source.
/// Values are ASCII: the fingerprint in lower-case hex, numbers in decimal.
public enum SourceHeaders {
    /// The file's fingerprint (``Checkpoint/fingerprint``).
    public static let file = "tidemark.file"
    /// Byte offset of the line's first byte in the file.
    public static let offset = "tidemark.offset"
    /// Byte offset just after the line's newline: where the next line starts.
    public static let end = "tidemark.end"
    /// 1-based line number in the file.
    public static let line = "tidemark.line"
    /// The producer's identity of the file (``Checkpoint/fileID``): unique per file, also for
    /// files whose bytes are equal.
    public static let fileID = "tidemark.fileid"

    /// The headers for `line`.
    static func make(fileBytes: [UInt8], fileIDBytes: [UInt8], line: TailedLine) -> [(String, [UInt8])] {
        [(file, fileBytes), (fileID, fileIDBytes), (offset, Array(String(line.start).utf8)),
         (end, Array(String(line.end).utf8)), (Self.line, Array(String(line.number).utf8))]
    }

    /// The file identity, fingerprint and end offset of a record written by `etl-produce`, nil
    /// for other records. `fileID` is nil for records of producers older than the header.
    public static func source(of headers: [(String, [UInt8]?)]) -> (fileID: String?, fingerprint: String, end: UInt64)? {
        var fingerprint: String?
        var id: String?
        var endOffset: UInt64?
        for (name, value) in headers {
            guard let value else { continue }
            if name == file { fingerprint = String(decoding: value, as: UTF8.self) }
            if name == fileID { id = String(decoding: value, as: UTF8.self) }
            if name == end { endOffset = UInt64(String(decoding: value, as: UTF8.self)) }
        }
        guard let fingerprint, let endOffset else { return nil }
        return (id, fingerprint, endOffset)
    }
}
