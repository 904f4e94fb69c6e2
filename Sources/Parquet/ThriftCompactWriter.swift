/// Thrift compact protocol type ids (thrift `doc/specs/thrift-compact-protocol.md`, "Struct encoding").
enum ThriftType: UInt8 {
    case booleanTrue = 1
    case booleanFalse = 2
    case i8 = 3
    case i16 = 4
    case i32 = 5
    case i64 = 6
    case double = 7
    case binary = 8
    case list = 9
    case set = 10
    case map = 11
    case `struct` = 12
    case uuid = 13
}

/// A minimal Thrift compact protocol encoder: exactly what parquet.thrift's structs need.
///
/// Fields must be written in ascending id order within a struct. The "previous field id" used for
/// the short (delta) field header restarts at 0 inside every nested struct, so it is kept on a
/// stack; deltas outside 1...15 use the long form (type byte, then zig-zag i16 id).
struct ThriftCompactWriter {
    let out: ByteBuffer
    private var lastFieldId: Int16 = 0
    private var stack: [Int16] = []

    init(out: ByteBuffer) {
        self.out = out
    }

    private mutating func fieldHeader(_ id: Int16, _ type: ThriftType) {
        let delta = Int(id) - Int(lastFieldId)
        if delta > 0 && delta <= 15 {
            out.append(byte: UInt8(delta) << 4 | type.rawValue)
        } else {
            out.append(byte: type.rawValue)
            out.appendVarint(zigzag(Int64(id)))
        }
        lastFieldId = id
    }

    @inline(__always)
    private func zigzag(_ v: Int64) -> UInt64 {
        UInt64(bitPattern: (v << 1) ^ (v >> 63))
    }

    mutating func writeI32(_ id: Int16, _ value: Int32) {
        fieldHeader(id, .i32)
        out.appendVarint(zigzag(Int64(value)))
    }

    mutating func writeI16(_ id: Int16, _ value: Int16) {
        fieldHeader(id, .i16)
        out.appendVarint(zigzag(Int64(value)))
    }

    mutating func writeI64(_ id: Int16, _ value: Int64) {
        fieldHeader(id, .i64)
        out.appendVarint(zigzag(value))
    }

    mutating func writeI8(_ id: Int16, _ value: Int8) {
        fieldHeader(id, .i8)
        out.append(byte: UInt8(bitPattern: value))
    }

    /// Booleans carry their value in the type nibble (1 = true, 2 = false) and have no payload.
    mutating func writeBool(_ id: Int16, _ value: Bool) {
        fieldHeader(id, value ? .booleanTrue : .booleanFalse)
    }

    mutating func writeBinary(_ id: Int16, _ bytes: [UInt8]) {
        fieldHeader(id, .binary)
        out.appendVarint(UInt64(bytes.count))
        out.append(contentsOf: bytes)
    }

    mutating func writeString(_ id: Int16, _ value: String) {
        writeBinary(id, Array(value.utf8))
    }

    /// Writes a nested struct field; `body` writes its fields, the stop byte is added here.
    mutating func writeStruct(_ id: Int16, _ body: (inout ThriftCompactWriter) -> Void) {
        fieldHeader(id, .struct)
        beginStructValue()
        body(&self)
        endStructValue()
    }

    /// Writes an empty marker struct (for example `StringType {}` or `MicroSeconds {}`).
    mutating func writeEmptyStruct(_ id: Int16) {
        writeStruct(id) { _ in }
    }

    /// Starts a struct that is a list element or the top-level value.
    mutating func beginStructValue() {
        stack.append(lastFieldId)
        lastFieldId = 0
    }

    mutating func endStructValue() {
        out.append(byte: 0)
        lastFieldId = stack.removeLast()
    }

    /// List header: `(size << 4) | elemType` for size < 15, else `0xF0 | elemType` then a varint size.
    mutating func writeListHeader(_ id: Int16, elementType: ThriftType, count: Int) {
        fieldHeader(id, .list)
        if count < 15 {
            out.append(byte: UInt8(count) << 4 | elementType.rawValue)
        } else {
            out.append(byte: 0xF0 | elementType.rawValue)
            out.appendVarint(UInt64(count))
        }
    }

    mutating func writeI32List(_ id: Int16, _ values: [Int32]) {
        writeListHeader(id, elementType: .i32, count: values.count)
        for v in values {
            out.appendVarint(zigzag(Int64(v)))
        }
    }

    mutating func writeStringList(_ id: Int16, _ values: [String]) {
        writeListHeader(id, elementType: .binary, count: values.count)
        for v in values {
            let bytes = Array(v.utf8)
            out.appendVarint(UInt64(bytes.count))
            out.append(contentsOf: bytes)
        }
    }

    /// Writes a list of structs, one `body` call per element.
    mutating func writeStructList<T>(_ id: Int16, _ values: [T], _ body: (inout ThriftCompactWriter, T) -> Void) {
        writeListHeader(id, elementType: .struct, count: values.count)
        for v in values {
            beginStructValue()
            body(&self, v)
            endStructValue()
        }
    }
}
