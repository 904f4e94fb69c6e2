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
/// Not thread-safe: use one writer from one task at a time. With a compression codec it runs
/// `options.compressionThreads` helper threads of its own (joined by `close()` or `deinit`).
public final class ParquetWriter {
    /// The schema being written.
    public let schema: ParquetSchema
    private let options: ParquetWriterOptions
    private let output: any ParquetOutput
    private let columns: [ColumnWriter]
    /// The same column writers, unretained, for the per-value hot path (`columns` keeps them alive).
    private let hot: UnsafeMutableBufferPointer<Unmanaged<ColumnWriter>>
    /// Rows until the next page / dictionary / row-group budget check (checks run every
    /// `checkInterval` rows, or after a large value, to keep `endRow` cheap).
    private var rowsUntilCheck = 0
    private var largeValueSeen = false
    private let signal = CheckSignal()
    private static let checkInterval = 32
    private static let largeValue = 1024
    private let compressor: (any PageCompressor)?
    private let worker: CompressionWorker?
    /// False when `worker` belongs to a shared `ParquetWriterScratch` (which stops it).
    private let ownsWorker: Bool
    private let codec: ParquetCodec
    private let scratch: PageScratch
    private var position: Int64 = 0
    private var rowsInGroup = 0
    private var totalRows = 0
    private var rowGroups: [RowGroupMeta] = []
    private var failure: ParquetError?
    private var closed = false
    /// The shared budget this writer reports its buffered bytes to, if any.
    private let budget: ParquetMemoryBudget?
    /// Buffered bytes as last measured (and reported to `budget`).
    private(set) var reportedBufferedBytes = 0

    private static let magic: [UInt8] = Array("PAR1".utf8)

    /// Creates a writer and writes the leading `PAR1` magic.
    ///
    /// - Parameter shared: page scratch buffers, compressor and (if it has compression threads)
    ///   compression threads to use instead of the writer's own; `options.compressionThreads` is
    ///   then ignored. Every writer given the same `ParquetWriterScratch` must be used from one
    ///   thread.
    /// - Throws: `ParquetError.Code.invalidSchema` for an empty schema or duplicate names;
    ///   `.compression` if libzstd or zlib cannot create a context; whatever `output.write` throws.
    public init(
        output: any ParquetOutput, schema: ParquetSchema, options: ParquetWriterOptions = .init(),
        shared: ParquetWriterScratch? = nil
    ) throws {
        try schema.validate()
        self.schema = schema
        self.options = options
        self.output = output
        self.scratch = shared?.pages ?? PageScratch()
        self.budget = shared?.memoryBudget
        let signal = self.signal
        let columns = schema.columns.map { ColumnWriter(column: $0, options: options, signal: signal) }
        self.columns = columns
        self.hot = .allocate(capacity: columns.count)
        _ = self.hot.initialize(from: columns.map { Unmanaged.passUnretained($0) })
        self.codec = options.compression.codec
        let compression = options.compression
        if compression == .uncompressed {
            compressor = nil
            worker = nil
            ownsWorker = false
        } else {
            if let shared {
                compressor = try shared.compressor(compression)
            } else {
                compressor = try compression.makeCompressor()
            }
            if let sharedWorker = try shared?.worker(compression) {
                worker = sharedWorker
                ownsWorker = false
            } else {
                worker =
                    options.compressionThreads > 0
                    ? try CompressionWorker(compression: compression, threads: options.compressionThreads) : nil
                ownsWorker = true
            }
        }
        do {
            try write(Self.magic)
        } catch {
            if ownsWorker { worker?.shutdown() }
            throw error
        }
        budget?.register(self)
    }

    deinit {
        budget?.unregister(self, reported: reportedBufferedBytes)
        if ownsWorker { worker?.shutdown() }
        hot.deallocate()
    }

    /// Rows buffered for the current row group.
    public var bufferedRows: Int { rowsInGroup }

    /// Records a new measurement of the buffered bytes with the shared budget, which may write
    /// row groups (this writer's too) early.
    private func report(_ bytes: Int) {
        guard let budget, bytes != reportedBufferedBytes else { return }
        let old = reportedBufferedBytes
        reportedBufferedBytes = bytes
        budget.report(from: old, to: bytes)
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

    /// Runs `body` on column `index` if it accepts a value of `type` in this row; records the misuse otherwise.
    @inline(__always)
    private func withColumn(
        _ index: Int, _ type: ParquetColumnType, _ what: String, _ body: (ColumnWriter) -> Void
    ) {
        guard index >= 0 && index < hot.count else {
            fail(ParquetError(.typeMismatch, "column index \(index) out of range 0..<\(columns.count)"))
            return
        }
        // `_withUnsafeGuaranteedRef` (stdlib) avoids a retain/release per value; `columns` owns the writers.
        hot[index]._withUnsafeGuaranteedRef { c in
            guard c.type == type, c.valueCount == rowsInGroup, !closed else {
                misuse(c, type, what)
                return
            }
            body(c)
        }
    }

    private func misuse(_ c: ColumnWriter, _ type: ParquetColumnType, _ what: String) {
        if closed {
            fail(ParquetError(.writerClosed, "append after close", column: c.column.name))
        } else if c.type != type {
            fail(ParquetError(.typeMismatch, "\(what) appended to a \(c.type) column", column: c.column.name))
        } else {
            fail(ParquetError(.incompleteRow, "two values for one column in row \(totalRows)", column: c.column.name))
        }
    }

    /// Appends an INT64 value.
    public func append(_ value: Int64, column: Int) {
        withColumn(column, .int64, "Int64") { $0.appendInteger(value) }
    }

    /// Appends an INT32 value.
    public func append(_ value: Int32, column: Int) {
        withColumn(column, .int32, "Int32") { $0.appendInteger(Int64(value)) }
    }

    /// Appends a DOUBLE value.
    public func append(_ value: Double, column: Int) {
        withColumn(column, .double, "Double") { $0.appendDouble(value) }
    }

    /// Appends a BOOLEAN value.
    public func append(_ value: Bool, column: Int) {
        withColumn(column, .boolean, "Bool") { $0.appendBool(value) }
    }

    /// Appends a timestamp in microseconds since 1970-01-01T00:00:00Z (negative before 1970).
    public func appendTimestamp(micros: Int64, column: Int) {
        withColumn(column, .timestampMicrosUTC, "timestamp") { $0.appendInteger(micros) }
    }

    /// Appends a string given as UTF-8 bytes. The bytes are borrowed only for the call and are
    /// copied before it returns. They are stored, compared and deduplicated as bytes; no
    /// Unicode normalisation happens and validity is the caller's responsibility.
    public func append(utf8 bytes: UnsafeRawBufferPointer, column: Int) {
        guard bytes.count <= Int(Int32.max) - 4 else {
            fail(ParquetError(.valueTooLarge, "string of \(bytes.count) bytes exceeds 2 GiB", column: "#\(column)"))
            return
        }
        if bytes.count >= Self.largeValue {
            largeValueSeen = true
        }
        withColumn(column, .string, "string") { c in
            c.appendBytes(bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, count: bytes.count)
        }
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
        withColumn(column, c.type, "null") { $0.appendNull() }
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
        do {
            for i in 0..<hot.count where hot[i]._withUnsafeGuaranteedRef({ $0.valueCount != expected }) {
                throw ParquetError(.incompleteRow, "no value for row \(totalRows)", column: columns[i].column.name)
            }
            rowsInGroup = expected
            totalRows += 1
            rowsUntilCheck -= 1
            var full = rowsInGroup >= (options.rowGroupMaxRows ?? Int.max)
            var measured: Int?
            if rowsUntilCheck <= 0 || largeValueSeen || signal.raised {
                rowsUntilCheck = Self.checkInterval
                largeValueSeen = false
                signal.raised = false
                var bytes = 0
                for c in columns {
                    try c.endRow(compressor: compressor, scratch: scratch, worker: worker)
                    bytes += c.estimatedBytes
                }
                full = full || bytes >= options.rowGroupMaxBytes
                measured = bytes
            }
            if full {
                try flushRowGroup()
            } else if let measured {
                report(measured)
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
            for c in columns {
                try c.flushPage(compressor: compressor, scratch: scratch, worker: worker)
            }
            try worker?.drain()
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
            report(0)
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
            createdBy: options.createdBy, profile: options.profile, into: footer)
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
        if ownsWorker { worker?.shutdown() }
        report(0)
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
