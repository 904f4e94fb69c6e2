/// An error from writing or reading Parquet, with the context needed to act on it.
public struct ParquetError: Error, Sendable, CustomStringConvertible {
    /// Broad classification of the failure.
    public enum Code: Sendable, Equatable {
        /// The schema is unusable (no columns, duplicate or empty names).
        case invalidSchema
        /// A value was appended to a column of another type, or a column index is out of range.
        case typeMismatch
        /// `appendNull` on a required column.
        case nullInRequiredColumn
        /// A row ended without a value for some column, or a column got two values in one row.
        case incompleteRow
        /// A single value or page does not fit the format's 32-bit sizes.
        case valueTooLarge
        /// The writer was used after `close()` or after an earlier error.
        case writerClosed
        /// An operating-system call failed (`errno` in `systemError`).
        case io
        /// libzstd reported an error.
        case compression
        /// The file is not Parquet (bad magic) or its trailer is malformed.
        case notParquet
        /// The footer is cut short (a length or list points past the bytes given).
        case truncated
        /// The footer is well-formed Thrift but not valid Parquet metadata.
        case corruptFooter
        /// The footer exceeds a decoding limit (size, list length, nesting).
        case limitExceeded
    }

    /// The classification.
    public var code: Code
    /// What went wrong, in words.
    public var reason: String
    /// The column concerned, if any.
    public var column: String?
    /// A byte offset (in the file, or in the footer for decoding errors), if relevant.
    public var offset: Int64?
    /// The file path, if known.
    public var path: String?
    /// The `errno` value for `.io` errors.
    public var systemError: Int32?

    /// Creates an error.
    public init(
        _ code: Code, _ reason: String, column: String? = nil, offset: Int64? = nil, path: String? = nil,
        systemError: Int32? = nil
    ) {
        self.code = code
        self.reason = reason
        self.column = column
        self.offset = offset
        self.path = path
        self.systemError = systemError
    }

    /// One line: code, reason and every piece of context that is set.
    public var description: String {
        var parts = ["ParquetError.\(code): \(reason)"]
        if let column { parts.append("column=\(column)") }
        if let offset { parts.append("offset=\(offset)") }
        if let path { parts.append("path=\(path)") }
        if let systemError { parts.append("errno=\(systemError)") }
        return parts.joined(separator: " ")
    }
}
