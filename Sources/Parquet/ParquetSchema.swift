/// The column types this writer supports, each mapped to a Parquet physical type and annotation.
///
/// | Case | Physical type | LogicalType (field 10) | ConvertedType (field 6) |
/// |---|---|---|---|
/// | `boolean` | BOOLEAN | none | none |
/// | `int32` | INT32 | none (signed 32 is implied) | none |
/// | `int64` | INT64 | none (signed 64 is implied) | none |
/// | `double` | DOUBLE | none | none |
/// | `string` | BYTE_ARRAY | STRING | UTF8 |
/// | `timestampMicrosUTC` | INT64 | TIMESTAMP(isAdjustedToUTC=true, MICROS) | TIMESTAMP_MICROS |
public enum ParquetColumnType: Sendable, Equatable, Hashable {
    /// BOOLEAN.
    case boolean
    /// INT32, signed.
    case int32
    /// INT64, signed.
    case int64
    /// DOUBLE (IEEE 754 binary64).
    case double
    /// BYTE_ARRAY annotated STRING / UTF8; values are UTF-8 bytes.
    case string
    /// INT64 microseconds since the Unix epoch, annotated TIMESTAMP(isAdjustedToUTC=true, MICROS).
    case timestampMicrosUTC

    /// parquet.thrift `enum Type`.
    var physicalType: ParquetPhysicalType {
        switch self {
        case .boolean: return .boolean
        case .int32: return .int32
        case .int64, .timestampMicrosUTC: return .int64
        case .double: return .double
        case .string: return .byteArray
        }
    }
}

/// One flat column: a name, a type, and whether it may hold nulls (OPTIONAL vs REQUIRED).
public struct ParquetColumn: Sendable, Equatable, Hashable {
    /// The column name (a single path element).
    public var name: String
    /// The value type.
    public var type: ParquetColumnType
    /// `true` writes an OPTIONAL column with definition levels; `false` a REQUIRED one.
    public var nullable: Bool
    /// Whether dictionary encoding may be tried (with ``ParquetWriterOptions/dictionaryEnabled``).
    /// `false` for columns whose values are (nearly) all distinct, such as offsets and
    /// timestamps: a dictionary there only costs a hash per value and a larger file.
    public var dictionary: Bool
    /// How values are encoded in data pages that do not use the dictionary.
    public var encoding: ParquetValueEncoding

    /// Creates a column description.
    public init(name: String, type: ParquetColumnType, nullable: Bool, dictionary: Bool = true,
                encoding: ParquetValueEncoding = .plain) {
        self.name = name
        self.type = type
        self.nullable = nullable
        self.dictionary = dictionary
        self.encoding = encoding
    }
}

/// The encoding of a column's non-dictionary data pages.
public enum ParquetValueEncoding: Sendable, Equatable, Hashable {
    /// PLAIN (`Encoding` 0): values back to back, little-endian.
    case plain
    /// DELTA_BINARY_PACKED (`Encoding` 5), for INT64 columns (`int64`, `timestampMicrosUTC`):
    /// far smaller pages for increasing values such as offsets, serials and timestamps, so
    /// much less to compress.
    case deltaBinaryPacked
}

/// A flat record schema: an ordered list of leaf columns (no nesting, no repetition).
public struct ParquetSchema: Sendable, Equatable, Hashable {
    /// The columns, in file order.
    public var columns: [ParquetColumn]

    /// Creates a schema from its columns.
    public init(columns: [ParquetColumn]) {
        self.columns = columns
    }

    func validate() throws(ParquetError) {
        guard !columns.isEmpty else {
            throw ParquetError(.invalidSchema, "a schema needs at least one column")
        }
        var seen = Set<[UInt8]>()
        for column in columns {
            guard !column.name.isEmpty else {
                throw ParquetError(.invalidSchema, "column names must not be empty")
            }
            // Names are compared as bytes: canonically equal but distinct spellings are distinct names.
            guard seen.insert(Array(column.name.utf8)).inserted else {
                throw ParquetError(.invalidSchema, "duplicate column name", column: column.name)
            }
            if column.encoding == .deltaBinaryPacked && column.type.physicalType != .int64 {
                throw ParquetError(.invalidSchema, "DELTA_BINARY_PACKED is supported for INT64 columns only",
                                   column: column.name)
            }
        }
    }
}

/// Page compression codec. Every data and dictionary page body is compressed on its own; page
/// headers are not. The codec is recorded in each `ColumnMetaData.codec`.
public enum ParquetCompression: Sendable, Equatable, Hashable {
    /// No compression (parquet.thrift `CompressionCodec.UNCOMPRESSED = 0`).
    case uncompressed
    /// Zstandard at the given level (`CompressionCodec.ZSTD = 6`), through libzstd.
    case zstd(level: Int32)
    /// Snappy, raw block format without framing (`CompressionCodec.SNAPPY = 1`), through
    /// libsnappy. The codec every Parquet reader has supported longest.
    case snappy
    /// gzip-format deflate stream at zlib level 1-9 (`CompressionCodec.GZIP = 2`), through zlib.
    case gzip(level: Int32)

    /// The parquet.thrift `CompressionCodec` written into the column chunk metadata.
    public var codec: ParquetCodec {
        switch self {
        case .uncompressed: return .uncompressed
        case .zstd: return .zstd
        case .snappy: return .snappy
        case .gzip: return .gzip
        }
    }
}

/// Which Parquet features the writer may use: the trade between size and speed on one side and
/// the age of the readers that must read the files on the other (docs/parquet.md, "Profiles").
public enum ParquetProfile: String, Sendable, Equatable, Hashable, CaseIterable {
    /// Current readers (Arrow, DuckDB, polars, Spark 3.3+, Trino, Athena engine 3):
    /// DELTA_BINARY_PACKED where a column asks for it, RLE_DICTIONARY data pages with a PLAIN
    /// dictionary page, LogicalType annotations (with ConvertedType where parquet-format defines
    /// an equivalent for strings and timestamps).
    case modern
    /// Also readers that predate the Parquet 2.0 encodings and LogicalType (Spark's vectorized
    /// reader before 3.3, Hive, older Athena/Presto and Impala): PLAIN and dictionary encodings
    /// only (columns that ask for DELTA_BINARY_PACKED are written PLAIN), dictionary pages and
    /// dictionary-encoded data pages marked PLAIN_DICTIONARY as parquet-mr's v1 writer does,
    /// data page v1, and a ConvertedType next to every LogicalType (INT_32, INT_64 included).
    case compatible
}

/// Writer settings. The defaults follow arrow-rs / parquet-mr where the issue does not say otherwise.
public struct ParquetWriterOptions: Sendable {
    /// Page compression. Default ZSTD level 3.
    public var compression: ParquetCompression = .zstd(level: 3)
    /// Cut a row group once its encoded, uncompressed size (pages + dictionaries) reaches this. Default 128 MiB.
    public var rowGroupMaxBytes: Int = 128 * 1024 * 1024
    /// Also cut a row group at this many rows, if set.
    public var rowGroupMaxRows: Int? = nil
    /// Target uncompressed size of one data page. Default 1 MiB.
    public var dataPageMaxBytes: Int = 1024 * 1024
    /// Maximum rows per data page (arrow-rs `DEFAULT_DATA_PAGE_ROW_COUNT_LIMIT`). Default 20,000.
    public var dataPageMaxRows: Int = 20_000
    /// When a column chunk's dictionary (PLAIN-encoded size) grows past this, the rest of the chunk
    /// is written PLAIN. Default 1 MiB.
    public var dictionaryMaxBytes: Int = 1024 * 1024
    /// Dictionary-encode string, int32, int64 and timestamp columns. Default true.
    public var dictionaryEnabled: Bool = true
    /// String min/max statistics longer than this are truncated (min: prefix; max: prefix rounded up)
    /// and flagged inexact. Default 64 bytes, as arrow-rs.
    public var statisticsTruncateLength: Int = 64
    /// Threads that compress pages (any codec) while encoding continues; 0 compresses inline on the
    /// calling thread. The file is byte-for-byte the same either way. Default 2.
    public var compressionThreads: Int = 2
    /// `FileMetaData.created_by`, in the `<app> version <semver> (build <hash>)` form readers parse.
    public var createdBy: String = "tidemark version 0.1.0 (build dev)"
    /// Which encodings and annotations the file may use. Default `.modern`.
    public var profile: ParquetProfile = .modern

    /// Creates the default options.
    public init() {}

    /// Creates options with the given overrides.
    public init(
        compression: ParquetCompression = .zstd(level: 3),
        rowGroupMaxBytes: Int = 128 * 1024 * 1024,
        rowGroupMaxRows: Int? = nil,
        dataPageMaxBytes: Int = 1024 * 1024,
        dictionaryMaxBytes: Int = 1024 * 1024,
        createdBy: String = "tidemark version 0.1.0 (build dev)",
        profile: ParquetProfile = .modern
    ) {
        self.compression = compression
        self.rowGroupMaxBytes = rowGroupMaxBytes
        self.rowGroupMaxRows = rowGroupMaxRows
        self.dataPageMaxBytes = dataPageMaxBytes
        self.dictionaryMaxBytes = dictionaryMaxBytes
        self.createdBy = createdBy
        self.profile = profile
    }
}

/// What `ParquetWriter.close` produced.
public struct ParquetWriteSummary: Sendable, Equatable {
    /// Rows written.
    public var rows: Int
    /// Row groups written.
    public var rowGroups: Int
    /// Total file size in bytes (magic, pages, footer, trailer).
    public var bytesWritten: Int64
}
