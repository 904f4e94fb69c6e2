#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Limits applied when decoding an untrusted footer.
public struct ParquetFooterLimits: Sendable {
    /// Largest accepted FileMetaData, in bytes. Default 16 MiB.
    public var maxFooterBytes: Int = 16 << 20
    /// Deepest accepted Thrift nesting (structs and lists). Default 32.
    public var maxDepth: Int = 32
    /// Largest accepted list (schema elements, row groups, columns, …). Default 1,000,000.
    public var maxListSize: Int = 1_000_000

    /// The defaults.
    public init() {}
}

/// Reads Parquet footers: `FileMetaData` from a file or from the file's last bytes (e.g. one
/// ranged GET on S3).
///
/// File layout (parquet-format README): `... FileMetaData | 4-byte LE length | "PAR1"`.
/// Truncated or hostile input produces a `ParquetError` (`.notParquet`, `.truncated`,
/// `.corruptFooter` or `.limitExceeded`), never a crash; allocations are bounded by the input size.
public enum ParquetFooter {
    /// Given the last 8 bytes of a file (4-byte LE footer length + "PAR1"), how many trailing
    /// bytes to fetch to have the whole footer (footer length + 8).
    public static func trailerLength(last8: [UInt8], limits: ParquetFooterLimits = .init()) throws -> Int {
        guard last8.count == 8 else {
            throw ParquetError(.truncated, "need exactly the last 8 bytes, got \(last8.count)")
        }
        guard last8[4] == 0x50, last8[5] == 0x41, last8[6] == 0x52, last8[7] == 0x31 else {
            throw ParquetError(.notParquet, "trailer magic is not PAR1 (encrypted PARE files are not supported)")
        }
        let length = Int(last8[0]) | Int(last8[1]) << 8 | Int(last8[2]) << 16 | Int(last8[3]) << 24
        guard length > 0 else {
            throw ParquetError(.corruptFooter, "footer length is 0")
        }
        guard length <= limits.maxFooterBytes else {
            throw ParquetError(
                .limitExceeded, "footer length \(length) exceeds the limit \(limits.maxFooterBytes)")
        }
        return length + 8
    }

    /// Decodes the footer from the file's tail: at least footer length + 8 bytes, ending at EOF.
    public static func decode(tail: [UInt8], limits: ParquetFooterLimits = .init()) throws -> ParquetFileMetadata {
        guard tail.count >= 8 else {
            throw ParquetError(.truncated, "tail of \(tail.count) bytes is shorter than the 8-byte trailer")
        }
        let total = try trailerLength(last8: Array(tail[(tail.count - 8)...]), limits: limits)
        guard tail.count >= total else {
            throw ParquetError(
                .truncated, "footer needs \(total) trailing bytes, only \(tail.count) given")
        }
        let start = tail.count - total
        var reader = ThriftCompactReader(
            bytes: tail, start: start, end: tail.count - 8, maxDepth: limits.maxDepth, maxListSize: limits.maxListSize)
        var metadata = try FooterDecoder.decodeFileMetaData(&reader)
        guard reader.remaining == 0 else {
            throw ParquetError(
                .corruptFooter, "\(reader.remaining) bytes left after FileMetaData", offset: Int64(reader.position - start))
        }
        metadata.footerLength = total - 8
        return metadata
    }

    /// Reads and decodes the footer of the file at `path` (two `pread`s: trailer, then footer).
    public static func read(path: String, limits: ParquetFooterLimits = .init()) throws -> ParquetFileMetadata {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            throw ParquetError(.io, "open(2) failed: \(String(cString: strerror(e)))", path: path, systemError: e)
        }
        defer { _ = close(fd) }
        do {
            var st = stat()
            guard fstat(fd, &st) == 0 else {
                let e = errno
                throw ParquetError(.io, "fstat(2) failed: \(String(cString: strerror(e)))", systemError: e)
            }
            let size = Int(st.st_size)
            // Smallest file: "PAR1" + footer (>= 1 byte) + length + "PAR1".
            guard size >= 12 else {
                throw ParquetError(.notParquet, "file of \(size) bytes is too small to be Parquet")
            }
            let last8 = try preadExactly(fd, count: 8, at: size - 8)
            let total = try trailerLength(last8: last8, limits: limits)
            guard total + 4 <= size else {
                throw ParquetError(.truncated, "footer of \(total - 8) bytes does not fit in a \(size)-byte file")
            }
            let head = try preadExactly(fd, count: 4, at: 0)
            guard head == Array("PAR1".utf8) else {
                throw ParquetError(.notParquet, "leading magic is not PAR1")
            }
            let tail = try preadExactly(fd, count: total, at: size - total)
            return try decode(tail: tail, limits: limits)
        } catch var error as ParquetError {
            error.path = path
            throw error
        }
    }

    private static func preadExactly(_ fd: Int32, count: Int, at offset: Int) throws(ParquetError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = buffer.withUnsafeMutableBytes { p in
                pread(fd, p.baseAddress! + done, count - done, off_t(offset + done))
            }
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                throw ParquetError(.io, "pread(2) failed: \(String(cString: strerror(e)))", systemError: e)
            }
            if n == 0 {
                throw ParquetError(.truncated, "file ended while reading the footer", offset: Int64(offset + done))
            }
            done += n
        }
        return buffer
    }
}

/// parquet.thrift struct decoders (field ids as in the spec; see FooterEncoder).
enum FooterDecoder {
    private struct Element {
        var name = ""
        var type: Int32?
        var typeLength: Int32?
        var repetition: Int32?
        var numChildren: Int32?
        var convertedType: Int32?
        var logicalType: ParquetLogicalType?
    }

    static func decodeFileMetaData(_ r: inout ThriftCompactReader) throws(ParquetError) -> ParquetFileMetadata {
        var version: Int32?
        var elements: [Element]?
        var numRows: Int64?
        var rowGroups: [ParquetRowGroupInfo]?
        var keyValues: [(key: String, value: String?)] = []
        var createdBy: String?
        try r.readStruct("FileMetaData") { (r: inout ThriftCompactReader, id: Int16, t: UInt8) throws(ParquetError) in
            switch id {
            case 1: version = try r.readI32(t, "FileMetaData.version")
            case 2:
                let (et, n) = try r.readListHeader(t, "FileMetaData.schema")
                var list: [Element] = []
                for _ in 0..<n {
                    list.append(try decodeSchemaElement(&r, et))
                }
                elements = list
            case 3: numRows = try r.readI64(t, "FileMetaData.num_rows")
            case 4:
                let (et, n) = try r.readListHeader(t, "FileMetaData.row_groups")
                var list: [ParquetRowGroupInfo] = []
                for _ in 0..<n {
                    list.append(try decodeRowGroup(&r, et))
                }
                rowGroups = list
            case 5:
                let (et, n) = try r.readListHeader(t, "FileMetaData.key_value_metadata")
                for _ in 0..<n {
                    try requireStruct(et, "KeyValue")
                    var key: String?
                    var value: String?
                    try r.readStruct("KeyValue") { (r: inout ThriftCompactReader, id: Int16, t: UInt8) throws(ParquetError) in
                        switch id {
                        case 1: key = try r.readString(t, "KeyValue.key")
                        case 2: value = try r.readString(t, "KeyValue.value")
                        default: try r.skip(t)
                        }
                    }
                    guard let key else { throw r.corrupt("KeyValue without required key") }
                    keyValues.append((key: key, value: value))
                }
            case 6: createdBy = try r.readString(t, "FileMetaData.created_by")
            default: try r.skip(t)
            }
        }
        guard let version else { throw r.corrupt("FileMetaData without required version (1)") }
        guard let elements else { throw r.corrupt("FileMetaData without required schema (2)") }
        guard let numRows else { throw r.corrupt("FileMetaData without required num_rows (3)") }
        guard let rowGroups else { throw r.corrupt("FileMetaData without required row_groups (4)") }
        guard numRows >= 0 else { throw r.corrupt("negative num_rows \(numRows)") }
        let fields = try leaves(elements, &r)
        for (i, group) in rowGroups.enumerated() {
            guard group.columns.count == fields.count else {
                throw r.corrupt("row group \(i) has \(group.columns.count) column chunks for \(fields.count) leaf columns")
            }
        }
        return ParquetFileMetadata(
            version: version, numRows: numRows, createdBy: createdBy, keyValueMetadata: keyValues, schema: fields,
            rowGroups: rowGroups, footerLength: 0)
    }

    private static func requireStruct(_ type: UInt8, _ what: String) throws(ParquetError) {
        guard type == ThriftType.struct.rawValue else {
            throw ParquetError(.corruptFooter, "\(what): list elements are Thrift type \(type), not struct")
        }
    }

    /// Walks the depth-first schema list (root first, `num_children` per group) and returns the leaves.
    private static func leaves(_ elements: [Element], _ r: inout ThriftCompactReader) throws(ParquetError) -> [ParquetSchemaField] {
        guard let root = elements.first else { throw r.corrupt("empty schema") }
        var result: [ParquetSchemaField] = []
        var index = 1
        // Stack of (children remaining, path so far); depth bounded by maxDepth.
        var stack: [(remaining: Int, path: [String])] = [(Int(root.numChildren ?? 0), [])]
        guard (root.numChildren ?? 0) >= 0 else { throw r.corrupt("negative num_children on the schema root") }
        while var top = stack.popLast() {
            guard top.remaining > 0 else { continue }
            top.remaining -= 1
            stack.append(top)
            guard index < elements.count else {
                throw r.corrupt("schema num_children promise more elements than the \(elements.count) present")
            }
            let e = elements[index]
            index += 1
            let path = top.path + [e.name]
            if let children = e.numChildren, children > 0 || e.type == nil {
                guard children >= 0 else { throw r.corrupt("negative num_children for \(e.name)") }
                guard stack.count < r.maxDepth else {
                    throw ParquetError(.limitExceeded, "schema nested deeper than \(r.maxDepth)")
                }
                stack.append((Int(children), path))
            } else {
                guard let type = e.type else { throw r.corrupt("schema leaf \(e.name) has no type") }
                result.append(
                    ParquetSchemaField(
                        name: e.name, path: path, physicalType: ParquetPhysicalType(rawValue: type),
                        repetition: e.repetition.map(ParquetRepetition.init(raw:)), convertedType: e.convertedType,
                        logicalType: e.logicalType, typeLength: e.typeLength))
            }
        }
        guard index == elements.count else {
            throw r.corrupt("schema has \(elements.count - index) elements not reachable from the root")
        }
        return result
    }

    private static func decodeSchemaElement(_ r: inout ThriftCompactReader, _ et: UInt8) throws(ParquetError) -> Element {
        try requireStruct(et, "SchemaElement")
        var e = Element()
        var hasName = false
        try r.readStruct("SchemaElement") { (r: inout ThriftCompactReader, id: Int16, t: UInt8) throws(ParquetError) in
            switch id {
            case 1: e.type = try r.readI32(t, "SchemaElement.type")
            case 2: e.typeLength = try r.readI32(t, "SchemaElement.type_length")
            case 3: e.repetition = try r.readI32(t, "SchemaElement.repetition_type")
            case 4:
                e.name = try r.readString(t, "SchemaElement.name")
                hasName = true
            case 5: e.numChildren = try r.readI32(t, "SchemaElement.num_children")
            case 6: e.convertedType = try r.readI32(t, "SchemaElement.converted_type")
            case 10: e.logicalType = try decodeLogicalType(&r, t)
            default: try r.skip(t)
            }
        }
        guard hasName else { throw r.corrupt("SchemaElement without required name (4)") }
        return e
    }

    private static func decodeLogicalType(_ r: inout ThriftCompactReader, _ t: UInt8) throws(ParquetError) -> ParquetLogicalType? {
        try requireStruct(t, "LogicalType")
        var result: ParquetLogicalType?
        try r.readStruct("LogicalType") { (r: inout ThriftCompactReader, id: Int16, t: UInt8) throws(ParquetError) in
            switch id {
            case 8:
                try requireStruct(t, "TimestampType")
                var utc = false
                var unit: ParquetTimeUnit?
                try r.readStruct("TimestampType") { (r: inout ThriftCompactReader, id: Int16, t: UInt8) throws(ParquetError) in
                    switch id {
                    case 1: utc = try r.readBool(t, "TimestampType.isAdjustedToUTC")
                    case 2:
                        try requireStruct(t, "TimeUnit")
                        try r.readStruct("TimeUnit") { (r: inout ThriftCompactReader, id: Int16, t: UInt8) throws(ParquetError) in
                            switch id {
                            case 1: unit = .millis
                            case 2: unit = .micros
                            case 3: unit = .nanos
                            default: break
                            }
                            try r.skip(t)
                        }
                    default: try r.skip(t)
                    }
                }
                result = unit.map { .timestamp(isAdjustedToUTC: utc, unit: $0) } ?? .other(fieldId: 8)
            case 10:
                try requireStruct(t, "IntType")
                var width: Int8 = 0
                var signed = false
                try r.readStruct("IntType") { (r: inout ThriftCompactReader, id: Int16, t: UInt8) throws(ParquetError) in
                    switch id {
                    case 1: width = try r.readI8(t, "IntType.bitWidth")
                    case 2: signed = try r.readBool(t, "IntType.isSigned")
                    default: try r.skip(t)
                    }
                }
                result = .integer(bitWidth: width, isSigned: signed)
            case 5:
                try requireStruct(t, "DecimalType")
                var scale: Int32 = 0
                var precision: Int32 = 0
                try r.readStruct("DecimalType") { (r: inout ThriftCompactReader, id: Int16, t: UInt8) throws(ParquetError) in
                    switch id {
                    case 1: scale = try r.readI32(t, "DecimalType.scale")
                    case 2: precision = try r.readI32(t, "DecimalType.precision")
                    default: try r.skip(t)
                    }
                }
                result = .decimal(scale: scale, precision: precision)
            default:
                try r.skip(t)
                switch id {
                case 1: result = .string
                case 6: result = .date
                case 12: result = .json
                default: result = .other(fieldId: id)
                }
            }
        }
        return result
    }

    private static func decodeRowGroup(_ r: inout ThriftCompactReader, _ et: UInt8) throws(ParquetError) -> ParquetRowGroupInfo {
        try requireStruct(et, "RowGroup")
        var columns: [ParquetColumnChunkInfo]?
        var totalByteSize: Int64?
        var numRows: Int64?
        var fileOffset: Int64?
        var totalCompressed: Int64?
        try r.readStruct("RowGroup") { (r: inout ThriftCompactReader, id: Int16, t: UInt8) throws(ParquetError) in
            switch id {
            case 1:
                let (et, n) = try r.readListHeader(t, "RowGroup.columns")
                var list: [ParquetColumnChunkInfo] = []
                for _ in 0..<n {
                    list.append(try decodeColumnChunk(&r, et))
                }
                columns = list
            case 2: totalByteSize = try r.readI64(t, "RowGroup.total_byte_size")
            case 3: numRows = try r.readI64(t, "RowGroup.num_rows")
            case 5: fileOffset = try r.readI64(t, "RowGroup.file_offset")
            case 6: totalCompressed = try r.readI64(t, "RowGroup.total_compressed_size")
            default: try r.skip(t)
            }
        }
        guard let columns else { throw r.corrupt("RowGroup without required columns (1)") }
        guard let totalByteSize else { throw r.corrupt("RowGroup without required total_byte_size (2)") }
        guard let numRows, numRows >= 0 else { throw r.corrupt("RowGroup without a valid num_rows (3)") }
        return ParquetRowGroupInfo(
            numRows: numRows, totalByteSize: totalByteSize, totalCompressedSize: totalCompressed, fileOffset: fileOffset,
            columns: columns)
    }

    private static func decodeColumnChunk(_ r: inout ThriftCompactReader, _ et: UInt8) throws(ParquetError) -> ParquetColumnChunkInfo {
        try requireStruct(et, "ColumnChunk")
        var fileOffset: Int64?
        var info: ParquetColumnChunkInfo?
        try r.readStruct("ColumnChunk") { (r: inout ThriftCompactReader, id: Int16, t: UInt8) throws(ParquetError) in
            switch id {
            case 2: fileOffset = try r.readI64(t, "ColumnChunk.file_offset")
            case 3: info = try decodeColumnMetaData(&r, t)
            default: try r.skip(t)
            }
        }
        guard var info else {
            throw r.corrupt("ColumnChunk without meta_data (3); metadata stored outside the footer is not supported")
        }
        info.fileOffset = fileOffset ?? 0
        return info
    }

    private static func decodeColumnMetaData(_ r: inout ThriftCompactReader, _ t: UInt8) throws(ParquetError) -> ParquetColumnChunkInfo {
        try requireStruct(t, "ColumnMetaData")
        var type: Int32?
        var encodings: [Int32] = []
        var path: [String]?
        var codec: Int32?
        var numValues: Int64?
        var uncompressed: Int64?
        var compressed: Int64?
        var dataPageOffset: Int64?
        var dictionaryPageOffset: Int64?
        var statistics: ParquetStatistics?
        try r.readStruct("ColumnMetaData") { (r: inout ThriftCompactReader, id: Int16, t: UInt8) throws(ParquetError) in
            switch id {
            case 1: type = try r.readI32(t, "ColumnMetaData.type")
            case 2:
                let (et, n) = try r.readListHeader(t, "ColumnMetaData.encodings")
                for _ in 0..<n {
                    encodings.append(try r.readI32(et, "ColumnMetaData.encodings[]"))
                }
            case 3:
                let (et, n) = try r.readListHeader(t, "ColumnMetaData.path_in_schema")
                var list: [String] = []
                for _ in 0..<n {
                    list.append(try r.readString(et, "ColumnMetaData.path_in_schema[]"))
                }
                path = list
            case 4: codec = try r.readI32(t, "ColumnMetaData.codec")
            case 5: numValues = try r.readI64(t, "ColumnMetaData.num_values")
            case 6: uncompressed = try r.readI64(t, "ColumnMetaData.total_uncompressed_size")
            case 7: compressed = try r.readI64(t, "ColumnMetaData.total_compressed_size")
            case 9: dataPageOffset = try r.readI64(t, "ColumnMetaData.data_page_offset")
            case 11: dictionaryPageOffset = try r.readI64(t, "ColumnMetaData.dictionary_page_offset")
            case 12: statistics = try decodeStatistics(&r, t)
            default: try r.skip(t)
            }
        }
        guard let type else { throw r.corrupt("ColumnMetaData without required type (1)") }
        guard let path else { throw r.corrupt("ColumnMetaData without required path_in_schema (3)") }
        guard let codec else { throw r.corrupt("ColumnMetaData without required codec (4)") }
        guard let numValues else { throw r.corrupt("ColumnMetaData without required num_values (5)") }
        guard let uncompressed, let compressed else { throw r.corrupt("ColumnMetaData without required sizes (6, 7)") }
        guard let dataPageOffset else { throw r.corrupt("ColumnMetaData without required data_page_offset (9)") }
        return ParquetColumnChunkInfo(
            name: path.joined(separator: "."), path: path, physicalType: ParquetPhysicalType(rawValue: type),
            codec: ParquetCodec(rawValue: codec), encodings: encodings, numValues: numValues,
            totalUncompressedSize: uncompressed, totalCompressedSize: compressed, dataPageOffset: dataPageOffset,
            dictionaryPageOffset: dictionaryPageOffset, statistics: statistics, fileOffset: 0)
    }

    private static func decodeStatistics(_ r: inout ThriftCompactReader, _ t: UInt8) throws(ParquetError) -> ParquetStatistics {
        try requireStruct(t, "Statistics")
        var s = ParquetStatistics()
        try r.readStruct("Statistics") { (r: inout ThriftCompactReader, id: Int16, t: UInt8) throws(ParquetError) in
            switch id {
            case 1: s.legacyMax = try r.readBinary(t, "Statistics.max")
            case 2: s.legacyMin = try r.readBinary(t, "Statistics.min")
            case 3: s.nullCount = try r.readI64(t, "Statistics.null_count")
            case 4: s.distinctCount = try r.readI64(t, "Statistics.distinct_count")
            case 5: s.maxValue = try r.readBinary(t, "Statistics.max_value")
            case 6: s.minValue = try r.readBinary(t, "Statistics.min_value")
            case 7: s.isMaxValueExact = try r.readBool(t, "Statistics.is_max_value_exact")
            case 8: s.isMinValueExact = try r.readBool(t, "Statistics.is_min_value_exact")
            default: try r.skip(t)
            }
        }
        return s
    }
}
