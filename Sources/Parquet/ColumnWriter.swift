/// Scratch buffers shared by all columns of one writer (pages are built one at a time), or by
/// several writers on one thread through ``ParquetWriterScratch``.
final class PageScratch {
    let body = ByteBuffer(capacity: 1 << 20)
    let compressed = ByteBuffer(capacity: 1 << 20)
    let header = ByteBuffer(capacity: 256)
}

/// Set by a column when its state needs the writer's attention at the end of the row (the
/// dictionary outgrew its limit), so `endRow` can skip the per-column checks otherwise.
final class CheckSignal {
    var raised = false
}

/// Footer facts about one written column chunk.
struct ColumnChunkMeta {
    var physicalType: ParquetPhysicalType
    var encodings: [Int32]
    var path: String
    var codec: ParquetCodec
    var numValues: Int64
    var totalUncompressedSize: Int64
    var totalCompressedSize: Int64
    var dataPageOffset: Int64
    var dictionaryPageOffset: Int64?
    var statistics: StatisticsMeta
    /// (page type, encoding, count) for `ColumnMetaData.encoding_stats` (field 13).
    var encodingStats: [(pageType: Int32, encoding: Int32, count: Int32)]
}

/// Chunk statistics as they go into the footer.
struct StatisticsMeta {
    var minValue: [UInt8]?
    var maxValue: [UInt8]?
    var nullCount: Int64
    var isMinExact = true
    var isMaxExact = true
    /// Also write deprecated `min`/`max` (fields 2/1): only where signed order is the type order.
    var writeLegacy = false
}

/// Buffers and encodes one column of the current row group.
///
/// Values go into the open page (PLAIN bytes, or dictionary indices). Full pages are encoded,
/// compressed (inline or by the `CompressionWorker`) and kept in `sink` (header + body) until
/// the row group is written, so memory is one row group of compressed pages plus one open page
/// and one dictionary per column.
final class ColumnWriter {
    let column: ParquetColumn
    /// `column.type`, stored separately so the hot path does not copy `column` (and retain its name).
    let type: ParquetColumnType
    let physicalType: ParquetPhysicalType
    let nullable: Bool
    private let pageMaxBytes: Int
    private let pageMaxRows: Int
    private let dictionaryMaxBytes: Int
    private let statisticsTruncateLength: Int
    private let dictionaryAllowed: Bool
    /// Non-dictionary pages are DELTA_BINARY_PACKED rather than PLAIN (INT64 columns, modern profile).
    private let deltaPages: Bool
    /// The encoding of dictionary-index data pages: RLE_DICTIONARY, or PLAIN_DICTIONARY in the
    /// compatible profile (the bytes are the same; only the enum value differs).
    private let dictionaryDataEncoding: ParquetEncoding
    /// The encoding recorded for the dictionary page: PLAIN, or PLAIN_DICTIONARY in the compatible profile.
    private let dictionaryPageEncoding: ParquetEncoding

    // Row group state.
    /// Values (nulls included) appended to this column in the current row group.
    private(set) var valueCount = 0
    private var nullCount: Int64 = 0
    private var dictionaryActive: Bool
    // Both exist for every column (small until used) so the hot path needs no optional unwrapping.
    private let bytesDictionary: BytesDictionary
    private let intDictionary: IntDictionary
    private let usesBytesDictionary: Bool

    // Open page.
    private var pageValues = 0
    private var pageNonNull = 0
    /// What the open page's values would take PLAIN-encoded (dictionary mode only).
    private var pagePlainBytes = 0
    /// Whether the dictionary has been judged on this chunk's first page.
    private var dictionaryJudged = false
    private var pageHasNull = false
    private let definitionLevels: ByteBuffer
    private var plain = ByteBuffer(capacity: 64 * 1024)
    private let indices = UInt32Buffer(capacity: 4096)
    private var boolBits: UInt8 = 0
    private var boolBitCount = 0

    // Finished pages of this chunk (filled by the compression worker, if any).
    private let sink = PageSink()
    /// Estimated header + body bytes of the pages handed off (the sink's exact totals may still be in flight).
    private var submittedBytes = 0
    private var chunkValues: Int64 = 0
    private var dictionaryDataPages: Int32 = 0
    private var plainDataPages: Int32 = 0
    private var deltaDataPages: Int32 = 0

    // Statistics.
    private var hasMinMax = false
    private var minInt: Int64 = 0
    private var maxInt: Int64 = 0
    private var minDouble: Double = 0
    private var maxDouble: Double = 0
    private let minBytes = ByteBuffer(capacity: 64)
    private let maxBytes = ByteBuffer(capacity: 64)

    private let signal: CheckSignal

    init(column: ParquetColumn, options: ParquetWriterOptions, signal: CheckSignal) {
        self.signal = signal
        self.column = column
        self.type = column.type
        self.physicalType = column.type.physicalType
        self.nullable = column.nullable
        self.pageMaxBytes = max(options.dataPageMaxBytes, 1)
        self.pageMaxRows = max(options.dataPageMaxRows, 1)
        self.dictionaryMaxBytes = options.dictionaryMaxBytes
        self.statisticsTruncateLength = max(options.statisticsTruncateLength, 1)
        self.definitionLevels = ByteBuffer(capacity: column.nullable ? 4096 : 16)
        bytesDictionary = BytesDictionary()
        intDictionary = IntDictionary(width: column.type == .int32 ? 4 : 8)
        usesBytesDictionary = column.type == .string
        switch column.type {
        case .string, .int32, .int64, .timestampMicrosUTC:
            dictionaryAllowed = options.dictionaryEnabled && column.dictionary
        case .boolean, .double:
            dictionaryAllowed = false
        }
        self.dictionaryActive = dictionaryAllowed
        // ParquetSchema.validate() (run before any ColumnWriter exists) allows it on INT64 only.
        // The compatible profile writes those columns PLAIN (or dictionary, if the column allows it).
        switch options.profile {
        case .modern:
            self.deltaPages = column.encoding == .deltaBinaryPacked
            self.dictionaryDataEncoding = .rleDictionary
            self.dictionaryPageEncoding = .plain
        case .compatible:
            // parquet-mr's v1 writer (DefaultV1ValuesWriterFactory) marks both PLAIN_DICTIONARY;
            // Impala before 4.0 decodes only that (IMPALA-6434), old Presto only filters on it.
            self.deltaPages = false
            self.dictionaryDataEncoding = .plainDictionary
            self.dictionaryPageEncoding = .plainDictionary
        }
    }

    // MARK: Appending (hot path: no allocation once buffers have grown)

    @inline(__always)
    private func present() {
        if nullable {
            definitionLevels.append(byte: 1)
        }
        pageValues &+= 1
        pageNonNull &+= 1
        valueCount &+= 1
    }

    func appendNull() {
        definitionLevels.append(byte: 0)
        pageHasNull = true
        nullCount &+= 1
        pageValues &+= 1
        valueCount &+= 1
    }

    @inline(__always)
    private func updateIntStatistics(_ v: Int64) {
        if hasMinMax {
            if v < minInt { minInt = v }
            if v > maxInt { maxInt = v }
        } else {
            minInt = v
            maxInt = v
            hasMinMax = true
        }
    }

    /// INT32 and INT64 (timestamps included): dictionary index or PLAIN little-endian bytes.
    @inline(__always)
    func appendInteger(_ v: Int64) {
        present()
        if dictionaryActive {
            var inserted = false
            indices.append(intDictionary.index(of: v, inserted: &inserted))
            pagePlainBytes &+= intDictionary.width
            if inserted {
                updateIntStatistics(v)
                if intDictionary.byteSize > dictionaryMaxBytes {
                    signal.raised = true
                }
            }
        } else {
            if physicalType == .int32 {
                plain.appendLittleEndian(Int32(truncatingIfNeeded: v))
            } else {
                plain.appendLittleEndian(v)
            }
            updateIntStatistics(v)
        }
    }

    @inline(__always)
    func appendDouble(_ v: Double) {
        present()
        plain.appendLittleEndian(v.bitPattern)
        // NaN is excluded from min/max (it has no place in the order); ±0 is normalised on output.
        guard !v.isNaN else { return }
        if hasMinMax {
            if v < minDouble { minDouble = v }
            if v > maxDouble { maxDouble = v }
        } else {
            minDouble = v
            maxDouble = v
            hasMinMax = true
        }
    }

    /// BOOLEAN PLAIN is bit-packed, least significant bit first.
    @inline(__always)
    func appendBool(_ v: Bool) {
        present()
        if v {
            boolBits |= 1 << UInt8(boolBitCount)
        }
        boolBitCount &+= 1
        if boolBitCount == 8 {
            plain.append(byte: boolBits)
            boolBits = 0
            boolBitCount = 0
        }
        updateIntStatistics(v ? 1 : 0)
    }

    @inline(__always)
    func appendBytes(_ p: UnsafeRawPointer, count n: Int) {
        present()
        if dictionaryActive {
            var inserted = false
            indices.append(bytesDictionary.index(of: p, count: n, inserted: &inserted))
            pagePlainBytes &+= 4 &+ n
            if inserted {
                updateByteStatistics(p, n)
                if bytesDictionary.byteSize > dictionaryMaxBytes {
                    signal.raised = true
                }
            }
        } else {
            plain.appendLittleEndian(UInt32(truncatingIfNeeded: n))
            plain.append(p, count: n)
            updateByteStatistics(p, n)
        }
    }

    @inline(__always)
    private func updateByteStatistics(_ p: UnsafeRawPointer, _ n: Int) {
        if hasMinMax {
            if compareBytes(p, n, minBytes.base, minBytes.count) < 0 {
                minBytes.removeAll()
                minBytes.append(p, count: n)
            } else if compareBytes(p, n, maxBytes.base, maxBytes.count) > 0 {
                maxBytes.removeAll()
                maxBytes.append(p, count: n)
            }
        } else {
            minBytes.append(p, count: n)
            maxBytes.append(p, count: n)
            hasMinMax = true
        }
    }

    // MARK: Sizes

    private var dictionaryBytes: Int {
        usesBytesDictionary ? bytesDictionary.byteSize : intDictionary.byteSize
    }

    private var dictionaryCount: Int {
        usesBytesDictionary ? bytesDictionary.count : intDictionary.count
    }

    /// Estimated encoded (uncompressed) size of the open page.
    private var openPageBytes: Int {
        let levels = nullable ? definitionLevels.count / 8 + 8 : 0
        if dictionaryActive {
            let width = RleHybrid.bitWidth(forMax: UInt32(truncatingIfNeeded: max(dictionaryCount - 1, 0)))
            return levels + (indices.count * width + 7) / 8 + 1
        }
        return levels + plain.count + (boolBitCount > 0 ? 1 : 0)
    }

    /// Encoded, uncompressed bytes this column holds for the current row group.
    var estimatedBytes: Int {
        submittedBytes + openPageBytes + dictionaryBytes
    }

    /// Closes the open page when it is full, and leaves dictionary encoding when the dictionary
    /// outgrew `dictionaryMaxBytes` (the rest of the chunk is PLAIN, as arrow-rs and parquet-mr do).
    /// Called between rows only, so pages start at row boundaries.
    func endRow(compressor: (any PageCompressor)?, scratch: PageScratch, worker: CompressionWorker?) throws(ParquetError) {
        if dictionaryActive && !dictionaryJudged && pagePlainBytes >= Self.dictionaryJudgeBytes && pageNonNull > 0 {
            // Judge on a sample rather than the whole first page: a high-cardinality column
            // (log messages) would otherwise build a page-sized dictionary and hash table per
            // open writer only to drop it (heaptrack, 32 open batches: 45 MiB of 270 MiB peak).
            judgeDictionary()
        }
        if dictionaryActive && dictionaryBytes > dictionaryMaxBytes {
            try flushPage(compressor: compressor, scratch: scratch, worker: worker)
            dictionaryActive = false
            return
        }
        if pageValues >= pageMaxRows || openPageBytes >= pageMaxBytes {
            try flushPage(compressor: compressor, scratch: scratch, worker: worker)
        }
    }

    // MARK: Pages

    /// Encodes the open page (DataPage V1: `[def levels][values]`) and hands it to the worker for
    /// compression, or compresses it inline when there is no worker.
    func flushPage(compressor: (any PageCompressor)?, scratch: PageScratch, worker: CompressionWorker?) throws(ParquetError) {
        guard pageValues > 0 else { return }
        if dictionaryActive && !dictionaryJudged && pageNonNull > 0 {
            judgeDictionary()
        }
        let plainPage = !(dictionaryActive && pageNonNull > 0)
        if plainPage && boolBitCount > 0 {
            plain.append(byte: boolBits)
        }
        let body: ByteBuffer
        let encoding: ParquetEncoding
        if plainPage && !nullable && !deltaPages, let worker, worker.acceptsHandover {
            // A required column's PLAIN values are the whole page body: hand the buffer over
            // instead of copying it, and continue in a recycled one.
            encoding = .plain
            body = plain
            plain = worker.takeBuffer()
        } else {
            body = worker?.takeBuffer() ?? scratch.body
            body.removeAll()
            if nullable {
                // V1 definition levels: 4-byte little-endian byte length, then the hybrid runs, bit width 1.
                let lengthAt = body.count
                body.appendLittleEndian(UInt32(0))
                if pageHasNull {
                    let levels = UnsafeBufferPointer(
                        start: definitionLevels.base.assumingMemoryBound(to: UInt8.self), count: definitionLevels.count)
                    RleHybrid.encode(levels, bitWidth: 1, into: body)
                } else {
                    body.appendVarint(UInt64(pageValues) << 1)
                    body.append(byte: 1)
                }
                body.setUInt32LE(UInt32(body.count - lengthAt - 4), at: lengthAt)
            }
            if plainPage && deltaPages && pageNonNull > 0 {
                // `plain` holds the page's non-null values as little-endian INT64.
                encoding = .deltaBinaryPacked
                DeltaBinaryPacked.encodeInt64(plain.bytes, count: pageNonNull, into: body)
                plain.removeAll()
            } else if plainPage {
                encoding = .plain
                body.append(plain.bytes)
                plain.removeAll()
                if dictionaryActive {
                    // A page of a dictionary column that is PLAIN only because it holds no
                    // values: the column's later pages need no page-sized PLAIN buffer.
                    plain.shrink(ifAbove: 64 * 1024)
                }
            } else {
                // Dictionary indices: 1 byte bit width, then hybrid runs with no length prefix.
                encoding = dictionaryDataEncoding
                let width = RleHybrid.bitWidth(forMax: UInt32(dictionaryCount - 1))
                body.append(byte: UInt8(width))
                RleHybrid.encode(indices.buffer, bitWidth: width, into: body)
            }
        }
        let kind = PageKind.data(numValues: Int32(pageValues), encoding: encoding)
        submittedBytes += body.count + 24
        if let worker {
            try worker.submit(body: body, kind: kind, sink: sink, column: column.name)
        } else {
            try encodePage(
                body: body, kind: kind, compressor: compressor, compressed: scratch.compressed, header: scratch.header,
                into: sink, column: column.name)
        }
        chunkValues += Int64(pageValues)
        switch encoding {
        case .rleDictionary, .plainDictionary: dictionaryDataPages += 1
        case .deltaBinaryPacked: deltaDataPages += 1
        default: plainDataPages += 1
        }
        pageValues = 0
        pageNonNull = 0
        pagePlainBytes = 0
        pageHasNull = false
        definitionLevels.removeAll()
        plain.removeAll()
        plain.shrink(ifAbove: 4 * pageMaxBytes + (1 << 16))
        indices.removeAll()
        boolBits = 0
        boolBitCount = 0
    }

    /// Values worth of PLAIN bytes after which the dictionary is judged, if the first page is not
    /// full yet (the open page then continues PLAIN).
    static let dictionaryJudgeBytes = 64 * 1024

    /// On the chunk's first dictionary page (its first `dictionaryJudgeBytes` of values, or the
    /// whole page if smaller): if indices plus dictionary are not smaller than PLAIN (parquet-mr's
    /// `isCompressionSatisfying`), rewrite the page's values PLAIN and drop the dictionary for this
    /// chunk, so high-cardinality columns carry no useless dictionary page.
    private func judgeDictionary() {
        dictionaryJudged = true
        let width = RleHybrid.bitWidth(forMax: UInt32(dictionaryCount - 1))
        let encoded = (indices.count * width + 7) / 8 + 1 + dictionaryBytes
        guard encoded >= pagePlainBytes else { return }
        plain.removeAll()
        plain.reserve(pagePlainBytes)
        for index in indices.buffer {
            if usesBytesDictionary {
                bytesDictionary.appendPlain(Int(index), to: plain)
            } else {
                intDictionary.appendPlain(Int(index), to: plain)
            }
        }
        indices.removeAll()
        bytesDictionary.release()
        intDictionary.release()
        dictionaryActive = false
    }

    // MARK: Chunk

    /// Writes `[dictionary page] data pages` for this row group at file offset `position` and
    /// resets the column for the next row group. The open page must have been flushed and the
    /// worker drained.
    func writeChunk(
        to output: any ParquetOutput, at position: Int64, codec: ParquetCodec, compressor: (any PageCompressor)?,
        scratch: PageScratch
    ) throws -> ColumnChunkMeta {
        precondition(pageValues == 0, "flushPage before writeChunk")
        var encodings: [Int32] = []
        var encodingStats: [(pageType: Int32, encoding: Int32, count: Int32)] = []
        var dictionaryPageOffset: Int64?
        var dataPageOffset = position
        var uncompressed: Int64 = 0
        var compressed: Int64 = 0
        let dictionaryPlain = usesBytesDictionary ? bytesDictionary.plain : intDictionary.plain
        if dictionaryDataPages > 0 {
            let page = PageSink()
            try encodePage(
                body: dictionaryPlain,
                kind: .dictionary(numValues: Int32(dictionaryCount), encoding: dictionaryPageEncoding),
                compressor: compressor,
                compressed: scratch.compressed, header: scratch.header, into: page, column: column.name)
            try output.write(page.chunk.bytes)
            dictionaryPageOffset = position
            dataPageOffset = position + page.compressed
            uncompressed += page.uncompressed
            compressed += page.compressed
            encodings.append(dictionaryPageEncoding.rawValue)
            encodingStats.append((pageType: 2, encoding: dictionaryPageEncoding.rawValue, count: 1))
        }
        try output.write(sink.chunk.bytes)
        precondition(Int64(sink.chunk.count) == sink.compressed)
        uncompressed += sink.uncompressed
        compressed += sink.compressed
        encodings.append(ParquetEncoding.rle.rawValue)
        if dictionaryDataPages > 0 {
            if !encodings.contains(dictionaryDataEncoding.rawValue) {
                encodings.append(dictionaryDataEncoding.rawValue)
            }
            encodingStats.append(
                (pageType: 0, encoding: dictionaryDataEncoding.rawValue, count: dictionaryDataPages))
        }
        if plainDataPages > 0 {
            if !encodings.contains(ParquetEncoding.plain.rawValue) {
                encodings.append(ParquetEncoding.plain.rawValue)
            }
            encodingStats.append((pageType: 0, encoding: ParquetEncoding.plain.rawValue, count: plainDataPages))
        }
        if deltaDataPages > 0 {
            encodings.append(ParquetEncoding.deltaBinaryPacked.rawValue)
            encodingStats.append(
                (pageType: 0, encoding: ParquetEncoding.deltaBinaryPacked.rawValue, count: deltaDataPages))
        }
        let meta = ColumnChunkMeta(
            physicalType: physicalType, encodings: encodings, path: column.name, codec: codec,
            numValues: chunkValues, totalUncompressedSize: uncompressed, totalCompressedSize: compressed,
            dataPageOffset: dataPageOffset, dictionaryPageOffset: dictionaryPageOffset,
            statistics: statistics(), encodingStats: encodingStats)
        resetRowGroup()
        return meta
    }

    private func resetRowGroup() {
        valueCount = 0
        nullCount = 0
        dictionaryActive = dictionaryAllowed
        dictionaryJudged = false
        bytesDictionary.reset()
        intDictionary.reset()
        sink.reset()
        submittedBytes = 0
        chunkValues = 0
        dictionaryDataPages = 0
        plainDataPages = 0
        deltaDataPages = 0
        hasMinMax = false
        minBytes.removeAll()
        maxBytes.removeAll()
        minBytes.shrink(ifAbove: 4096)
        maxBytes.shrink(ifAbove: 4096)
    }

    /// Statistics in PLAIN form (parquet.thrift `Statistics`: "Values are encoded using PLAIN
    /// encoding, except that variable-length byte arrays do not include a length prefix").
    private func statistics() -> StatisticsMeta {
        var s = StatisticsMeta(nullCount: nullCount)
        guard hasMinMax else { return s }
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
            withUnsafeBytes(of: v.littleEndian) { Array($0) }
        }
        switch column.type {
        case .boolean:
            s.minValue = [minInt == 0 ? 0 : 1]
            s.maxValue = [maxInt == 0 ? 0 : 1]
        case .int32:
            s.minValue = le(Int32(truncatingIfNeeded: minInt))
            s.maxValue = le(Int32(truncatingIfNeeded: maxInt))
            s.writeLegacy = true
        case .int64, .timestampMicrosUTC:
            s.minValue = le(minInt)
            s.maxValue = le(maxInt)
            s.writeLegacy = true
        case .double:
            // -0.0 as min and +0.0 as max, so a zero of either sign is inside the bounds.
            let lo = minDouble == 0 ? -0.0 : minDouble
            let hi = maxDouble == 0 ? 0.0 : maxDouble
            s.minValue = le(lo.bitPattern)
            s.maxValue = le(hi.bitPattern)
        case .string:
            let limit = statisticsTruncateLength
            let lo = minBytes.array
            let hi = maxBytes.array
            if lo.count > limit {
                s.minValue = Array(lo[..<utf8Boundary(lo, atMost: limit)])
                s.isMinExact = false
            } else {
                s.minValue = lo
            }
            if hi.count > limit {
                s.maxValue = roundUpTruncated(hi, limit: limit)
                s.isMaxExact = false
            } else {
                s.maxValue = hi
            }
        }
        return s
    }
}

/// The largest prefix length <= `limit` that does not split a UTF-8 sequence.
func utf8Boundary(_ bytes: [UInt8], atMost limit: Int) -> Int {
    var n = min(limit, bytes.count)
    while n > 0 && n < bytes.count && bytes[n] & 0xC0 == 0x80 {
        n -= 1
    }
    return n
}

/// An upper bound for every string starting with `bytes`, at most about `limit` bytes long:
/// a UTF-8-aligned prefix whose last scalar is incremented (dropping trailing scalars that cannot
/// be incremented). Returns nil when no such bound exists; the caller then omits the max.
/// For input that is not valid UTF-8 it falls back to incrementing the last byte below 0xFF.
func roundUpTruncated(_ bytes: [UInt8], limit: Int) -> [UInt8]? {
    var prefix = Array(bytes[..<utf8Boundary(bytes, atMost: limit)])
    if let scalars = String(validating: prefix, as: UTF8.self)?.unicodeScalars {
        var list = Array(scalars)
        while let last = list.popLast() {
            var next = last.value + 1
            if next == 0xD800 { next = 0xE000 }
            if next <= 0x10FFFF, let scalar = Unicode.Scalar(next) {
                list.append(scalar)
                var s = String.UnicodeScalarView()
                s.append(contentsOf: list)
                return Array(String(s).utf8)
            }
        }
        return nil
    }
    while let last = prefix.popLast() {
        if last < 0xFF {
            prefix.append(last + 1)
            return prefix
        }
    }
    return nil
}
