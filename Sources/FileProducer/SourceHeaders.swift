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

    /// The headers for `line`.
    static func make(fileBytes: [UInt8], line: TailedLine) -> [(String, [UInt8])] {
        [(file, fileBytes), (offset, Array(String(line.start).utf8)), (end, Array(String(line.end).utf8)),
         (Self.line, Array(String(line.number).utf8))]
    }

    /// The fingerprint and end offset of a record written by `etl-produce`, nil for other records.
    public static func source(of headers: [(String, [UInt8]?)]) -> (fingerprint: String, end: UInt64)? {
        var fingerprint: String?
        var endOffset: UInt64?
        for (name, value) in headers {
            guard let value else { continue }
            if name == file { fingerprint = String(decoding: value, as: UTF8.self) }
            if name == end { endOffset = UInt64(String(decoding: value, as: UTF8.self)) }
        }
        guard let fingerprint, let endOffset else { return nil }
        return (fingerprint, endOffset)
    }
}
