/// parquet.thrift `enum Type` (physical type). Unknown values are kept as their raw number.
public struct ParquetPhysicalType: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    /// The thrift enum value.
    public var rawValue: Int32
    /// Wraps a raw value.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// `BOOLEAN` = 0.
    public static let boolean = ParquetPhysicalType(rawValue: 0)
    /// `INT32` = 1.
    public static let int32 = ParquetPhysicalType(rawValue: 1)
    /// `INT64` = 2.
    public static let int64 = ParquetPhysicalType(rawValue: 2)
    /// `INT96 (deprecated)` = 3.
    public static let int96 = ParquetPhysicalType(rawValue: 3)
    /// `FLOAT` = 4.
    public static let float = ParquetPhysicalType(rawValue: 4)
    /// `DOUBLE` = 5.
    public static let double = ParquetPhysicalType(rawValue: 5)
    /// `BYTE_ARRAY` = 6.
    public static let byteArray = ParquetPhysicalType(rawValue: 6)
    /// `FIXED_LEN_BYTE_ARRAY` = 7.
    public static let fixedLenByteArray = ParquetPhysicalType(rawValue: 7)

    /// The parquet.thrift name, e.g. `BYTE_ARRAY`.
    public var description: String {
        let names = ["BOOLEAN", "INT32", "INT64", "INT96", "FLOAT", "DOUBLE", "BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY"]
        return rawValue >= 0 && Int(rawValue) < names.count ? names[Int(rawValue)] : "Type(\(rawValue))"
    }
}

/// parquet.thrift `enum CompressionCodec`.
public struct ParquetCodec: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    /// The thrift enum value.
    public var rawValue: Int32
    /// Wraps a raw value.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// `UNCOMPRESSED` = 0.
    public static let uncompressed = ParquetCodec(rawValue: 0)
    /// `SNAPPY` = 1.
    public static let snappy = ParquetCodec(rawValue: 1)
    /// `GZIP` = 2.
    public static let gzip = ParquetCodec(rawValue: 2)
    /// `LZO` = 3.
    public static let lzo = ParquetCodec(rawValue: 3)
    /// `BROTLI` = 4.
    public static let brotli = ParquetCodec(rawValue: 4)
    /// `LZ4 (deprecated Hadoop framing)` = 5.
    public static let lz4 = ParquetCodec(rawValue: 5)
    /// `ZSTD` = 6.
    public static let zstd = ParquetCodec(rawValue: 6)
    /// `LZ4_RAW` = 7.
    public static let lz4Raw = ParquetCodec(rawValue: 7)

    /// The parquet.thrift name, e.g. `ZSTD`.
    public var description: String {
        let names = ["UNCOMPRESSED", "SNAPPY", "GZIP", "LZO", "BROTLI", "LZ4", "ZSTD", "LZ4_RAW"]
        return rawValue >= 0 && Int(rawValue) < names.count ? names[Int(rawValue)] : "Codec(\(rawValue))"
    }
}

/// parquet.thrift `enum Encoding` values used in this module.
enum ParquetEncoding: Int32 {
    case plain = 0
    case plainDictionary = 2
    case rle = 3
    case deltaBinaryPacked = 5
    case rleDictionary = 8
}

/// parquet.thrift `enum FieldRepetitionType`.
public enum ParquetRepetition: Sendable, Hashable {
    /// `REQUIRED` = 0.
    case required
    /// `OPTIONAL` = 1.
    case optional
    /// `REPEATED` = 2.
    case repeated
    /// A value outside the enum.
    case unknown(Int32)

    init(raw: Int32) {
        switch raw {
        case 0: self = .required
        case 1: self = .optional
        case 2: self = .repeated
        default: self = .unknown(raw)
        }
    }
}

/// parquet.thrift `union TimeUnit`.
public enum ParquetTimeUnit: Sendable, Hashable {
    /// `MILLIS` (field 1).
    case millis
    /// `MICROS` (field 2).
    case micros
    /// `NANOS` (field 3).
    case nanos
}

/// parquet.thrift `union LogicalType`, decoded for the members this project cares about.
public enum ParquetLogicalType: Sendable, Hashable {
    /// `STRING` (field 1).
    case string
    /// `TIMESTAMP` (field 8).
    case timestamp(isAdjustedToUTC: Bool, unit: ParquetTimeUnit)
    /// `INTEGER` (field 10).
    case integer(bitWidth: Int8, isSigned: Bool)
    /// `DATE` (field 6).
    case date
    /// `DECIMAL` (field 5).
    case decimal(scale: Int32, precision: Int32)
    /// `JSON` (field 12).
    case json
    /// Any other member, by its union field id.
    case other(fieldId: Int16)
}

/// Column statistics (parquet.thrift `struct Statistics`) as stored: PLAIN-encoded bounds
/// (no length prefix for byte arrays).
public struct ParquetStatistics: Sendable, Hashable {
    /// `min_value` (field 6).
    public var minValue: [UInt8]?
    /// `max_value` (field 5).
    public var maxValue: [UInt8]?
    /// `null_count` (field 3).
    public var nullCount: Int64?
    /// `distinct_count` (field 4).
    public var distinctCount: Int64?
    /// `is_min_value_exact` (field 8).
    public var isMinValueExact: Bool?
    /// `is_max_value_exact` (field 7).
    public var isMaxValueExact: Bool?
    /// Deprecated `min` (field 2), signed order only.
    public var legacyMin: [UInt8]?
    /// Deprecated `max` (field 1), signed order only.
    public var legacyMax: [UInt8]?

    /// Creates statistics.
    public init(
        minValue: [UInt8]? = nil, maxValue: [UInt8]? = nil, nullCount: Int64? = nil, distinctCount: Int64? = nil,
        isMinValueExact: Bool? = nil, isMaxValueExact: Bool? = nil
    ) {
        self.minValue = minValue
        self.maxValue = maxValue
        self.nullCount = nullCount
        self.distinctCount = distinctCount
        self.isMinValueExact = isMinValueExact
        self.isMaxValueExact = isMaxValueExact
    }

    /// `minValue` read as a little-endian INT64 (or INT32, sign-extended), if it has that size.
    public var minInt64: Int64? { Self.int(minValue) }
    /// `maxValue` read as a little-endian INT64 (or INT32, sign-extended), if it has that size.
    public var maxInt64: Int64? { Self.int(maxValue) }

    static func int(_ bytes: [UInt8]?) -> Int64? {
        guard let bytes else { return nil }
        if bytes.count == 8 {
            var v: UInt64 = 0
            for (i, b) in bytes.enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
            return Int64(bitPattern: v)
        }
        if bytes.count == 4 {
            var v: UInt32 = 0
            for (i, b) in bytes.enumerated() { v |= UInt32(b) << (8 * UInt32(i)) }
            return Int64(Int32(bitPattern: v))
        }
        return nil
    }
}

/// One leaf column of the file schema.
public struct ParquetSchemaField: Sendable, Hashable {
    /// The leaf's name.
    public var name: String
    /// Names from the root's child down to this leaf (one element for flat schemas).
    public var path: [String]
    /// Physical type (`SchemaElement.type`, field 1).
    public var physicalType: ParquetPhysicalType
    /// `SchemaElement.repetition_type` (field 3).
    public var repetition: ParquetRepetition?
    /// `SchemaElement.converted_type` (field 6), raw.
    public var convertedType: Int32?
    /// `SchemaElement.logicalType` (field 10).
    public var logicalType: ParquetLogicalType?
    /// `SchemaElement.type_length` (field 2).
    public var typeLength: Int32?

    /// Whether the column may hold nulls (not REQUIRED).
    public var nullable: Bool { repetition != .required }

    /// The matching writer type, when the column is one this module writes.
    public var columnType: ParquetColumnType? {
        switch (physicalType, logicalType) {
        case (.boolean, nil): return .boolean
        case (.int32, nil), (.int32, .integer(32, true)?): return .int32
        case (.int64, nil), (.int64, .integer(64, true)?): return .int64
        case (.double, nil): return .double
        case (.byteArray, .string?): return .string
        case (.int64, .timestamp(true, .micros)?): return .timestampMicrosUTC
        default: return nil
        }
    }
}

/// One column chunk of a row group (`ColumnChunk` + its `ColumnMetaData`).
public struct ParquetColumnChunkInfo: Sendable, Hashable {
    /// `path_in_schema` joined with ".".
    public var name: String
    /// `ColumnMetaData.path_in_schema` (field 3).
    public var path: [String]
    /// `ColumnMetaData.type` (field 1).
    public var physicalType: ParquetPhysicalType
    /// `ColumnMetaData.codec` (field 4).
    public var codec: ParquetCodec
    /// `ColumnMetaData.encodings` (field 2), raw parquet.thrift `Encoding` values.
    public var encodings: [Int32]
    /// `ColumnMetaData.num_values` (field 5), nulls included.
    public var numValues: Int64
    /// `ColumnMetaData.total_uncompressed_size` (field 6), page headers included.
    public var totalUncompressedSize: Int64
    /// `ColumnMetaData.total_compressed_size` (field 7), page headers included.
    public var totalCompressedSize: Int64
    /// `ColumnMetaData.data_page_offset` (field 9).
    public var dataPageOffset: Int64
    /// `ColumnMetaData.dictionary_page_offset` (field 11).
    public var dictionaryPageOffset: Int64?
    /// `ColumnMetaData.statistics` (field 12).
    public var statistics: ParquetStatistics?
    /// `ColumnChunk.file_offset` (field 2).
    public var fileOffset: Int64
}

/// One row group.
public struct ParquetRowGroupInfo: Sendable, Hashable {
    /// `RowGroup.num_rows` (field 3).
    public var numRows: Int64
    /// `RowGroup.total_byte_size` (field 2).
    public var totalByteSize: Int64
    /// `RowGroup.total_compressed_size` (field 6).
    public var totalCompressedSize: Int64?
    /// `RowGroup.file_offset` (field 5).
    public var fileOffset: Int64?
    /// `RowGroup.columns` (field 1), in schema order.
    public var columns: [ParquetColumnChunkInfo]
}

/// A decoded footer (parquet.thrift `struct FileMetaData`).
public struct ParquetFileMetadata: Sendable {
    /// `version` (field 1).
    public var version: Int32
    /// `num_rows` (field 3).
    public var numRows: Int64
    /// `created_by` (field 6).
    public var createdBy: String?
    /// `key_value_metadata` (field 5), in file order; a missing value is `nil`.
    public var keyValueMetadata: [(key: String, value: String?)]
    /// The leaf columns of `schema` (field 2), in order.
    public var schema: [ParquetSchemaField]
    /// `row_groups` (field 4).
    public var rowGroups: [ParquetRowGroupInfo]
    /// Size of the serialized FileMetaData in bytes.
    public var footerLength: Int

    /// The value of the first key/value entry with this key.
    public func value(forKey key: String) -> String? {
        keyValueMetadata.first { $0.key == key }?.value ?? nil
    }

    /// The key/value metadata as a dictionary (later duplicates win; `nil` values omitted).
    public var keyValueDictionary: [String: String] {
        var d: [String: String] = [:]
        for kv in keyValueMetadata {
            if let v = kv.value { d[kv.key] = v }
        }
        return d
    }
}
