/// Row group facts for the footer.
struct RowGroupMeta {
    var columns: [ColumnChunkMeta]
    var totalByteSize: Int64
    var numRows: Int64
    var fileOffset: Int64
    var totalCompressedSize: Int64
    var ordinal: Int16
}

/// Serializes parquet.thrift `FileMetaData` with the compact protocol. Field ids are quoted from
/// apache/parquet-format `src/main/thrift/parquet.thrift` (see docs/parquet.md for the table).
enum FooterEncoder {
    static func encode(
        schema: ParquetSchema, numRows: Int64, rowGroups: [RowGroupMeta],
        keyValueMetadata: [(key: String, value: String)], createdBy: String, profile: ParquetProfile = .modern,
        into out: ByteBuffer
    ) {
        var w = ThriftCompactWriter(out: out)
        w.beginStructValue()
        // FileMetaData 1: required i32 version. The spec: writers "should always populate 1".
        w.writeI32(1, 1)
        // FileMetaData 2: required list<SchemaElement> schema (root first, then the leaves).
        let root: ParquetColumn? = nil
        w.writeStructList(2, [root] + schema.columns.map { Optional($0) }) { e, column in
            guard let column else {
                // SchemaElement 4: name, 5: num_children (root only).
                e.writeString(4, "schema")
                e.writeI32(5, Int32(schema.columns.count))
                return
            }
            writeSchemaElement(&e, column, profile: profile)
        }
        // FileMetaData 3: required i64 num_rows.
        w.writeI64(3, numRows)
        // FileMetaData 4: required list<RowGroup> row_groups.
        w.writeStructList(4, rowGroups) { r, group in
            writeRowGroup(&r, group)
        }
        // FileMetaData 5: optional list<KeyValue> key_value_metadata (KeyValue 1: key, 2: value).
        if !keyValueMetadata.isEmpty {
            w.writeStructList(5, keyValueMetadata) { kv, entry in
                kv.writeString(1, entry.key)
                kv.writeString(2, entry.value)
            }
        }
        // FileMetaData 6: optional string created_by.
        w.writeString(6, createdBy)
        // FileMetaData 7: optional list<ColumnOrder> column_orders, one TYPE_ORDER (union field 1)
        // per leaf; without it readers may not trust min_value/max_value.
        w.writeStructList(7, schema.columns) { o, _ in
            o.writeEmptyStruct(1)
        }
        w.endStructValue()
    }

    private static func writeSchemaElement(
        _ e: inout ThriftCompactWriter, _ column: ParquetColumn, profile: ParquetProfile
    ) {
        // SchemaElement 1: type, 3: repetition_type (REQUIRED=0, OPTIONAL=1), 4: name,
        // 6: converted_type, 10: logicalType.
        e.writeI32(1, column.type.physicalType.rawValue)
        e.writeI32(3, column.nullable ? 1 : 0)
        e.writeString(4, column.name)
        switch column.type {
        case .string:
            e.writeI32(6, 0)  // ConvertedType.UTF8
            e.writeStruct(10) { l in
                l.writeEmptyStruct(1)  // LogicalType.STRING (StringType {})
            }
        case .timestampMicrosUTC:
            e.writeI32(6, 10)  // ConvertedType.TIMESTAMP_MICROS
            e.writeStruct(10) { l in
                // LogicalType.TIMESTAMP (8): TimestampType{1: isAdjustedToUTC, 2: unit (TimeUnit.MICROS = 2)}.
                l.writeStruct(8) { t in
                    t.writeBool(1, true)
                    t.writeStruct(2) { u in
                        u.writeEmptyStruct(2)
                    }
                }
            }
        case .int32, .int64:
            // Signed 32/64 bits are what the physical type implies, so the modern profile writes
            // no annotation (as arrow-rs and parquet-mr do for plain ints). The compatible one
            // writes ConvertedType INT_32 (17) / INT_64 (18) with LogicalType INTEGER (10):
            // IntType{1: bitWidth, 2: isSigned}, both spellings a reader may look for.
            guard profile == .compatible else { break }
            let is32 = column.type == .int32
            e.writeI32(6, is32 ? 17 : 18)
            e.writeStruct(10) { l in
                l.writeStruct(10) { t in
                    t.writeI8(1, is32 ? 32 : 64)
                    t.writeBool(2, true)
                }
            }
        case .boolean, .double:
            break
        }
    }

    private static func writeRowGroup(_ r: inout ThriftCompactWriter, _ group: RowGroupMeta) {
        // RowGroup 1: required list<ColumnChunk> columns.
        r.writeStructList(1, group.columns) { c, chunk in
            // ColumnChunk 2: required i64 file_offset; deprecated, 0 when no ColumnMetaData is
            // written outside the footer. Omitting it breaks pyarrow and DuckDB.
            c.writeI64(2, 0)
            // ColumnChunk 3: ColumnMetaData (optional in thrift, required by readers).
            c.writeStruct(3) { m in
                writeColumnMetaData(&m, chunk)
            }
        }
        // RowGroup 2: total_byte_size (uncompressed, headers included), 3: num_rows,
        // 5: file_offset (first page of the first chunk), 6: total_compressed_size, 7: ordinal.
        r.writeI64(2, group.totalByteSize)
        r.writeI64(3, group.numRows)
        r.writeI64(5, group.fileOffset)
        r.writeI64(6, group.totalCompressedSize)
        r.writeI16(7, group.ordinal)
    }

    private static func writeColumnMetaData(_ m: inout ThriftCompactWriter, _ chunk: ColumnChunkMeta) {
        m.writeI32(1, chunk.physicalType.rawValue)  // 1: type
        m.writeI32List(2, chunk.encodings)  // 2: encodings
        m.writeStringList(3, [chunk.path])  // 3: path_in_schema
        m.writeI32(4, chunk.codec.rawValue)  // 4: codec
        m.writeI64(5, chunk.numValues)  // 5: num_values, nulls included (= RowGroup.num_rows here)
        m.writeI64(6, chunk.totalUncompressedSize)  // 6: total_uncompressed_size
        m.writeI64(7, chunk.totalCompressedSize)  // 7: total_compressed_size
        m.writeI64(9, chunk.dataPageOffset)  // 9: data_page_offset
        if let offset = chunk.dictionaryPageOffset {
            m.writeI64(11, offset)  // 11: dictionary_page_offset, only when there is one
        }
        m.writeStruct(12) { s in  // 12: statistics
            writeStatistics(&s, chunk.statistics)
        }
        // 13: encoding_stats, list<PageEncodingStats{1: page_type, 2: encoding, 3: count}>.
        m.writeStructList(13, chunk.encodingStats) { p, stat in
            p.writeI32(1, stat.pageType)
            p.writeI32(2, stat.encoding)
            p.writeI32(3, stat.count)
        }
    }

    private static func writeStatistics(_ s: inout ThriftCompactWriter, _ stats: StatisticsMeta) {
        // Statistics 1: max, 2: min (deprecated, signed order), 3: null_count, 5: max_value,
        // 6: min_value, 7: is_max_value_exact, 8: is_min_value_exact.
        if stats.writeLegacy, let lo = stats.minValue, let hi = stats.maxValue {
            s.writeBinary(1, hi)
            s.writeBinary(2, lo)
        }
        s.writeI64(3, stats.nullCount)
        if let hi = stats.maxValue {
            s.writeBinary(5, hi)
        }
        if let lo = stats.minValue {
            s.writeBinary(6, lo)
        }
        if stats.maxValue != nil {
            s.writeBool(7, stats.isMaxExact)
        }
        if stats.minValue != nil {
            s.writeBool(8, stats.isMinExact)
        }
    }
}
