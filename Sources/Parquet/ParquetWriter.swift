/// Streams a flat-schema Parquet file to a `ParquetOutput`, one row group at a time.
///
/// Usage: for every row, call one `append…` per column (any order, by column index), then
/// `endRow()`. When the buffered row group reaches `rowGroupMaxBytes` (encoded, uncompressed)
/// or `rowGroupMaxRows`, it is written out, so memory is bounded by one row group. `close`
/// writes the footer; it does not close the output.
///
/// The `append` methods do not throw: misuse (wrong type, a null in a required column, two
/// values for one column in a row) is recorded and thrown by the next `endRow()` or `close()`.
/// After any error the writer is unusable and the bytes written so far are not a valid file.
///
/// Not thread-safe: use one writer from one task at a time.
public final class ParquetWriter {
    /// The schema being written.
    public let schema: ParquetSchema
    private let options: ParquetWriterOptions
    private let output: any ParquetOutput
    private let columns: [ColumnWriter]
    private let compressor: ZstdCompressor?
    private let codec: ParquetCodec
    private let scratch = PageScratch()
    private var position: Int64 = 0
    private var rowsInGroup = 0
    private var totalRows = 0
    private var rowGroups: [RowGroupMeta] = []
    private var failure: ParquetError?
    private var closed = false

    private static let magic: [UInt8] = Array("PAR1".utf8)

    /// Creates a writer and writes the leading `PAR1` magic.
    ///
    /// - Throws: `ParquetError.Code.invalidSchema` for an empty schema or duplicate names;
    ///   `.compression` if libzstd cannot create a context; whatever `output.write` throws.
    public init(output: any ParquetOutput, schema: ParquetSchema, options: ParquetWriterOptions = .init()) throws {
        try schema.validate()
        self.schema = schema
        self.options = options
        self.output = output
        self.columns = schema.columns.map { ColumnWriter(column: $0, options: options) }
        self.codec = options.compression.codec
        switch options.compression {
        case .uncompressed:
            compressor = nil
        case .zstd(let level):
            compressor = try ZstdCompressor(level: level)
        }
        try write(Self.magic)
    }

    /// Rows completed with `endRow()` so far (all row groups).
    public var rowCount: Int { totalRows }

    /// Encoded, uncompressed bytes buffered for the current row group (pages, open pages, dictionaries).
    public var estimatedBufferedBytes: Int {
        columns.reduce(0) { $0 + $1.estimatedBytes }
    }

    // MARK: Appending

    private func fail(_ error: ParquetError) {
        if failure == nil {
            failure = error
        }
    }

    @inline(__always)
    private func columnWriter(_ index: Int, _ type: ParquetColumnType, _ what: String) -> ColumnWriter? {
        guard index >= 0 && index < columns.count else {
            fail(ParquetError(.typeMismatch, "column index \(index) out of range 0..<\(columns.count)"))
            return nil
        }
        let c = columns[index]
        guard c.column.type == type else {
            fail(ParquetError(.typeMismatch, "\(what) appended to a \(c.column.type) column", column: c.column.name))
            return nil
        }
        guard c.valueCount == rowsInGroup, !closed else {
            fail(
                closed
                    ? ParquetError(.writerClosed, "append after close", column: c.column.name)
                    : ParquetError(.incompleteRow, "two values for one column in row \(totalRows)", column: c.column.name))
            return nil
        }
        return c
    }

    /// Appends an INT64 value.
    public func append(_ value: Int64, column: Int) {
        columnWriter(column, .int64, "Int64")?.appendInteger(value)
    }

    /// Appends an INT32 value.
    public func append(_ value: Int32, column: Int) {
        columnWriter(column, .int32, "Int32")?.appendInteger(Int64(value))
    }

    /// Appends a DOUBLE value.
    public func append(_ value: Double, column: Int) {
        columnWriter(column, .double, "Double")?.appendDouble(value)
    }

    /// Appends a BOOLEAN value.
    public func append(_ value: Bool, column: Int) {
        columnWriter(column, .boolean, "Bool")?.appendBool(value)
    }

    /// Appends a timestamp in microseconds since 1970-01-01T00:00:00Z (negative before 1970).
    public func appendTimestamp(micros: Int64, column: Int) {
        columnWriter(column, .timestampMicrosUTC, "timestamp")?.appendInteger(micros)
    }

    /// Appends a string given as UTF-8 bytes. The bytes are borrowed only for the call and are
    /// copied before it returns. They are stored, compared and deduplicated as bytes; no
    /// Unicode normalisation happens and validity is the caller's responsibility.
    public func append(utf8 bytes: UnsafeRawBufferPointer, column: Int) {
        guard let c = columnWriter(column, .string, "string") else { return }
        guard bytes.count <= Int(Int32.max) - 4 else {
            fail(ParquetError(.valueTooLarge, "string of \(bytes.count) bytes exceeds 2 GiB", column: c.column.name))
            return
        }
        c.appendBytes(bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, count: bytes.count)
    }

    /// Appends a string (its UTF-8 bytes, exactly as stored in the `String`).
    public func append(_ value: String, column: Int) {
        var value = value
        value.withUTF8 { append(utf8: UnsafeRawBufferPointer($0), column: column) }
    }

    /// Appends a null. Recorded as an error (thrown by `endRow`) on a required column.
    public func appendNull(column: Int) {
        guard index(column) else { return }
        let c = columns[column]
        guard c.column.nullable else {
            fail(ParquetError(.nullInRequiredColumn, "null appended to a required column", column: c.column.name))
            return
        }
        guard let c = columnWriter(column, c.column.type, "null") else { return }
        c.appendNull()
    }

    private func index(_ column: Int) -> Bool {
        guard column >= 0 && column < columns.count else {
            fail(ParquetError(.typeMismatch, "column index \(column) out of range 0..<\(columns.count)"))
            return false
        }
        return true
    }

    /// Completes a row: checks every column got exactly one value, closes full pages, and writes
    /// the row group out when it reached its budget.
    ///
    /// - Throws: the first recorded append error, `.incompleteRow`, or an output/compression error.
    public func endRow() throws {
        if let failure { throw failure }
        guard !closed else { throw ParquetError(.writerClosed, "endRow after close") }
        let expected = rowsInGroup + 1
        var bytes = 0
        do {
            for c in columns {
                guard c.valueCount == expected else {
                    throw ParquetError(.incompleteRow, "no value for row \(totalRows)", column: c.column.name)
                }
                try c.endRow(compressor: compressor, scratch: scratch)
                bytes += c.estimatedBytes
            }
            rowsInGroup = expected
            totalRows += 1
            if bytes >= options.rowGroupMaxBytes || rowsInGroup >= (options.rowGroupMaxRows ?? Int.max) {
                try flushRowGroup()
            }
        } catch {
            fail(error as? ParquetError ?? ParquetError(.io, "\(error)"))
            throw error
        }
    }

    /// Writes the buffered rows as a row group now (no-op when empty).
    public func flushRowGroup() throws {
        if let failure { throw failure }
        guard rowsInGroup > 0 else { return }
        do {
            let start = position
            var chunks: [ColumnChunkMeta] = []
            chunks.reserveCapacity(columns.count)
            for c in columns {
                let meta = try c.writeChunk(
                    to: output, at: position, codec: codec, compressor: compressor, scratch: scratch)
                position += meta.totalCompressedSize
                // ColumnMetaData.num_values must equal RowGroup.num_rows for flat columns (DuckDB checks).
                precondition(meta.numValues == Int64(rowsInGroup))
                chunks.append(meta)
            }
            rowGroups.append(
                RowGroupMeta(
                    columns: chunks,
                    totalByteSize: chunks.reduce(0) { $0 + $1.totalUncompressedSize },
                    numRows: Int64(rowsInGroup),
                    fileOffset: start,
                    totalCompressedSize: position - start,
                    ordinal: Int16(truncatingIfNeeded: rowGroups.count)))
            rowsInGroup = 0
        } catch {
            fail(error as? ParquetError ?? ParquetError(.io, "\(error)"))
            throw error
        }
    }

    /// Writes the last row group, the footer (`FileMetaData`), its length and `PAR1`.
    ///
    /// - Parameter keyValueMetadata: stored in `FileMetaData.key_value_metadata`, in order.
    /// - Returns: rows, row groups and total bytes written.
    /// - Throws: any recorded error; output errors. The output itself is left open.
    public func close(keyValueMetadata: [(key: String, value: String)] = []) throws -> ParquetWriteSummary {
        if let failure { throw failure }
        guard !closed else { throw ParquetError(.writerClosed, "close called twice") }
        try flushRowGroup()
        let footer = ByteBuffer(capacity: 4096)
        FooterEncoder.encode(
            schema: schema, numRows: Int64(totalRows), rowGroups: rowGroups, keyValueMetadata: keyValueMetadata,
            createdBy: options.createdBy, into: footer)
        guard footer.count <= Int(UInt32.max) else {
            throw ParquetError(.valueTooLarge, "footer of \(footer.count) bytes exceeds 4 GiB")
        }
        footer.appendLittleEndian(UInt32(footer.count))
        footer.append(contentsOf: Self.magic)
        do {
            try write(footer.bytes)
        } catch {
            fail(error as? ParquetError ?? ParquetError(.io, "\(error)"))
            throw error
        }
        closed = true
        return ParquetWriteSummary(rows: totalRows, rowGroups: rowGroups.count, bytesWritten: position)
    }

    private func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    private func write(_ bytes: UnsafeRawBufferPointer) throws {
        try output.write(bytes)
        position += Int64(bytes.count)
    }
}
