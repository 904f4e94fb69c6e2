/// A bounded Thrift compact protocol decoder for untrusted footers.
///
/// Every length and list size is checked against the bytes that remain before anything is
/// allocated, nesting is capped (`maxDepth`), and every failure is a thrown `ParquetError`
/// carrying the byte offset, never a trap.
struct ThriftCompactReader {
    private let bytes: [UInt8]
    private(set) var position: Int
    private let end: Int
    private var depth = 0
    let maxDepth: Int
    let maxListSize: Int
    /// The value of the last boolean field header (compact protocol stores it in the type nibble).
    private var pendingBool: Bool?

    init(bytes: [UInt8], start: Int, end: Int, maxDepth: Int, maxListSize: Int) {
        self.bytes = bytes
        self.position = start
        self.end = end
        self.maxDepth = maxDepth
        self.maxListSize = maxListSize
    }

    var remaining: Int { end - position }

    func corrupt(_ reason: String) -> ParquetError {
        ParquetError(.corruptFooter, reason, offset: Int64(position))
    }

    mutating func readByte() throws(ParquetError) -> UInt8 {
        guard position < end else {
            throw ParquetError(.truncated, "footer ends inside a Thrift value", offset: Int64(position))
        }
        let b = bytes[position]
        position += 1
        return b
    }

    mutating func readVarint() throws(ParquetError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try readByte()
            if shift == 63 && b > 1 {
                throw corrupt("varint overflows 64 bits")
            }
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 {
                return result
            }
            shift += 7
            if shift > 63 {
                throw corrupt("varint longer than 10 bytes")
            }
        }
    }

    mutating func readZigzag() throws(ParquetError) -> Int64 {
        let v = try readVarint()
        return Int64(bitPattern: (v >> 1) ^ (0 &- (v & 1)))
    }

    private func expect(_ type: UInt8, _ wanted: ThriftType, _ what: String) throws(ParquetError) {
        guard type == wanted.rawValue else {
            throw corrupt("\(what): expected Thrift type \(wanted.rawValue), found \(type)")
        }
    }

    mutating func readI64(_ type: UInt8, _ what: String) throws(ParquetError) -> Int64 {
        // Writers may widen smaller ints; accept i8/i16/i32/i64 for an i64 field.
        switch type {
        case ThriftType.i64.rawValue, ThriftType.i32.rawValue, ThriftType.i16.rawValue:
            return try readZigzag()
        case ThriftType.i8.rawValue:
            return Int64(Int8(bitPattern: try readByte()))
        default:
            throw corrupt("\(what): expected an integer, found Thrift type \(type)")
        }
    }

    mutating func readI32(_ type: UInt8, _ what: String) throws(ParquetError) -> Int32 {
        let v = try readI64(type, what)
        guard let r = Int32(exactly: v) else {
            throw corrupt("\(what): value \(v) does not fit in i32")
        }
        return r
    }

    mutating func readI8(_ type: UInt8, _ what: String) throws(ParquetError) -> Int8 {
        let v = try readI64(type, what)
        guard let r = Int8(exactly: v) else {
            throw corrupt("\(what): value \(v) does not fit in i8")
        }
        return r
    }

    mutating func readBool(_ type: UInt8, _ what: String) throws(ParquetError) -> Bool {
        guard type == ThriftType.booleanTrue.rawValue || type == ThriftType.booleanFalse.rawValue,
            let value = pendingBool
        else {
            throw corrupt("\(what): expected a boolean, found Thrift type \(type)")
        }
        pendingBool = nil
        return value
    }

    mutating func readBinary(_ type: UInt8, _ what: String) throws(ParquetError) -> [UInt8] {
        try expect(type, .binary, what)
        return try readBinaryValue(what)
    }

    mutating func readBinaryValue(_ what: String) throws(ParquetError) -> [UInt8] {
        let length = try readVarint()
        guard length <= UInt64(remaining) else {
            throw ParquetError(
                .truncated, "\(what): length \(length) exceeds the \(remaining) bytes left", offset: Int64(position))
        }
        let n = Int(length)
        let value = Array(bytes[position..<position + n])
        position += n
        return value
    }

    /// Strings are decoded leniently: invalid UTF-8 is replaced, never trusted or trapped on.
    mutating func readString(_ type: UInt8, _ what: String) throws(ParquetError) -> String {
        String(decoding: try readBinary(type, what), as: UTF8.self)
    }

    /// Reads a list header and checks the size against the remaining bytes (every element takes at
    /// least one byte) and `maxListSize`.
    mutating func readListHeader(_ type: UInt8, _ what: String) throws(ParquetError) -> (elementType: UInt8, count: Int) {
        guard type == ThriftType.list.rawValue || type == ThriftType.set.rawValue else {
            throw corrupt("\(what): expected a list, found Thrift type \(type)")
        }
        let header = try readByte()
        let elementType = header & 0x0F
        var size = UInt64(header >> 4)
        if size == 15 {
            size = try readVarint()
        }
        guard size <= UInt64(maxListSize) else {
            throw ParquetError(.limitExceeded, "\(what): list of \(size) elements exceeds the limit \(maxListSize)",
                offset: Int64(position))
        }
        guard size <= UInt64(remaining) else {
            throw ParquetError(.truncated, "\(what): list of \(size) elements but only \(remaining) bytes left",
                offset: Int64(position))
        }
        return (elementType, Int(size))
    }

    /// Reads a struct, calling `body` for each field with its id and type. `body` must consume the
    /// field's value (or call `skip`).
    mutating func readStruct(
        _ what: String, _ body: (inout ThriftCompactReader, Int16, UInt8) throws(ParquetError) -> Void
    ) throws(ParquetError) {
        depth += 1
        guard depth <= maxDepth else {
            throw ParquetError(.limitExceeded, "\(what): nesting deeper than \(maxDepth)", offset: Int64(position))
        }
        var lastId: Int16 = 0
        while true {
            let header = try readByte()
            if header == 0 {
                break
            }
            let type = header & 0x0F
            let delta = header >> 4
            let id: Int16
            if delta == 0 {
                let raw = try readZigzag()
                guard let narrow = Int16(exactly: raw) else {
                    throw corrupt("\(what): field id \(raw) out of range")
                }
                id = narrow
            } else {
                let (sum, overflow) = lastId.addingReportingOverflow(Int16(delta))
                guard !overflow else { throw corrupt("\(what): field id overflows") }
                id = sum
            }
            lastId = id
            if type == ThriftType.booleanTrue.rawValue {
                pendingBool = true
            } else if type == ThriftType.booleanFalse.rawValue {
                pendingBool = false
            } else {
                pendingBool = nil
            }
            try body(&self, id, type)
        }
        depth -= 1
    }

    /// Skips a value of the given type (unknown fields), bounded by `maxDepth`.
    mutating func skip(_ type: UInt8) throws(ParquetError) {
        switch type {
        case ThriftType.booleanTrue.rawValue, ThriftType.booleanFalse.rawValue:
            pendingBool = nil
        case ThriftType.i8.rawValue:
            _ = try readByte()
        case ThriftType.i16.rawValue, ThriftType.i32.rawValue, ThriftType.i64.rawValue:
            _ = try readVarint()
        case ThriftType.double.rawValue:
            try advance(8)
        case ThriftType.uuid.rawValue:
            try advance(16)
        case ThriftType.binary.rawValue:
            let length = try readVarint()
            guard length <= UInt64(remaining) else {
                throw ParquetError(.truncated, "binary of \(length) bytes exceeds the footer", offset: Int64(position))
            }
            try advance(Int(length))
        case ThriftType.list.rawValue, ThriftType.set.rawValue:
            let (elementType, count) = try readListHeader(type, "skipped list")
            try nested {
                (r: inout ThriftCompactReader) throws(ParquetError) in
                for _ in 0..<count {
                    try r.skipElement(elementType)
                }
            }
        case ThriftType.map.rawValue:
            let size = try readVarint()
            guard size <= UInt64(remaining), size <= UInt64(maxListSize) else {
                throw ParquetError(.limitExceeded, "map of \(size) entries", offset: Int64(position))
            }
            if size > 0 {
                let types = try readByte()
                try nested {
                    (r: inout ThriftCompactReader) throws(ParquetError) in
                    for _ in 0..<size {
                        try r.skipElement(types >> 4)
                        try r.skipElement(types & 0x0F)
                    }
                }
            }
        case ThriftType.struct.rawValue:
            try readStruct("skipped struct") {
                (r: inout ThriftCompactReader, _: Int16, t: UInt8) throws(ParquetError) in
                try r.skip(t)
            }
        default:
            throw corrupt("unknown Thrift type \(type)")
        }
    }

    /// List elements: booleans are one byte each (1 = true; 0 or 2 = false), the rest as fields.
    mutating func skipElement(_ type: UInt8) throws(ParquetError) {
        if type == ThriftType.booleanTrue.rawValue || type == ThriftType.booleanFalse.rawValue {
            _ = try readByte()
        } else {
            try skip(type)
        }
    }

    private mutating func nested(_ body: (inout ThriftCompactReader) throws(ParquetError) -> Void) throws(ParquetError) {
        depth += 1
        guard depth <= maxDepth else {
            throw ParquetError(.limitExceeded, "nesting deeper than \(maxDepth)", offset: Int64(position))
        }
        try body(&self)
        depth -= 1
    }

    private mutating func advance(_ n: Int) throws(ParquetError) {
        guard n <= remaining else {
            throw ParquetError(.truncated, "value of \(n) bytes exceeds the footer", offset: Int64(position))
        }
        position += n
    }
}
