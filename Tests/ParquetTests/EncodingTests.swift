import Foundation
import Testing

@testable import Parquet

/// Decodes the RLE / bit-packing hybrid (parquet-format Encodings.md), independently of the encoder.
func decodeHybrid(_ bytes: [UInt8], bitWidth: Int, count: Int) throws -> [UInt32] {
    var position = 0
    func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try #require(position < bytes.count ? bytes[position] : nil)
            position += 1
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
        }
    }
    var out: [UInt32] = []
    while out.count < count {
        let header = try varint()
        if header & 1 == 0 {
            var value: UInt32 = 0
            for i in 0..<((bitWidth + 7) / 8) {
                value |= UInt32(bytes[position]) << (8 * UInt32(i))
                position += 1
            }
            out += Array(repeating: value, count: Int(header >> 1))
        } else {
            let values = Int(header >> 1) * 8
            var bit = 0
            for _ in 0..<values {
                var v: UInt32 = 0
                for k in 0..<bitWidth {
                    let byte = bytes[position + (bit + k) / 8]
                    v |= UInt32((byte >> UInt8((bit + k) % 8)) & 1) << UInt32(k)
                }
                bit += bitWidth
                out.append(v)
            }
            position += values * bitWidth / 8
        }
    }
    #expect(position == bytes.count, "encoder emitted trailing bytes")
    return Array(out.prefix(count))
}

@Suite("Encodings: Thrift compact protocol and RLE/bit-packing hybrid")
struct EncodingTests {
    func thrift(_ body: (inout ThriftCompactWriter) -> Void) -> [UInt8] {
        let out = ByteBuffer()
        var w = ThriftCompactWriter(out: out)
        w.beginStructValue()
        body(&w)
        w.endStructValue()
        return out.array
    }

    @Test("data page header bytes match the worked example in the reference notes")
    func pageHeaderBytes() throws {
        // From /work/shared/reference/parquet.md §3 (uncompressed=100, compressed=60, 10 values, PLAIN, RLE, RLE).
        let expected: [UInt8] = [0x15, 0x00, 0x15, 0xC8, 0x01, 0x15, 0x78, 0x2C, 0x15, 0x14, 0x15, 0x00, 0x15, 0x06, 0x15, 0x06, 0x00, 0x00]
        let bytes = thrift { w in
            w.writeI32(1, 0)
            w.writeI32(2, 100)
            w.writeI32(3, 60)
            w.writeStruct(5) { h in
                h.writeI32(1, 10)
                h.writeI32(2, 0)
                h.writeI32(3, 3)
                h.writeI32(4, 3)
            }
        }
        #expect(bytes == expected)
        // The writer's own page path produces the same header for an uncompressed 100-byte body.
        let body = ByteBuffer()
        body.append(contentsOf: Array(repeating: 7, count: 100))
        let sink = PageSink()
        try encodePage(
            body: body, kind: .data(numValues: 10, encoding: .plain), compressor: nil, compressed: ByteBuffer(),
            header: ByteBuffer(), into: sink, column: "c")
        var viaWriter = expected
        viaWriter.replaceSubrange(6..<7, with: [0xC8, 0x01])  // compressed size = 100 as well
        #expect(Array(sink.chunk.array.prefix(viaWriter.count)) == viaWriter)
        #expect(sink.uncompressed == Int64(viaWriter.count + 100))
    }

    @Test("logical type bytes match the reference: TIMESTAMP(true, MICROS) and STRING")
    func logicalTypeBytes() {
        let timestamp = thrift { l in
            l.writeStruct(8) { t in
                t.writeBool(1, true)
                t.writeStruct(2) { u in u.writeEmptyStruct(2) }
            }
        }
        #expect(timestamp == [0x8C, 0x11, 0x1C, 0x2C, 0x00, 0x00, 0x00, 0x00])
        #expect(thrift { $0.writeEmptyStruct(1) } == [0x1C, 0x00, 0x00])
    }

    @Test("field id jumps over 15 use the long form and decode back")
    func longFieldHeader() throws {
        let bytes = thrift { w in
            w.writeI32(1, 5)
            w.writeI32(20, 7)
            w.writeI64(21, -1)
        }
        #expect(bytes == [0x15, 0x0A, 0x05, 0x28, 0x0E, 0x16, 0x01, 0x00])
        var r = ThriftCompactReader(bytes: bytes, start: 0, end: bytes.count, maxDepth: 8, maxListSize: 10)
        var seen: [Int16: Int64] = [:]
        try r.readStruct("test") { (r: inout ThriftCompactReader, id: Int16, t: UInt8) throws(ParquetError) in
            seen[id] = try r.readI64(t, "v")
        }
        #expect(seen == [1: 5, 20: 7, 21: -1])
    }

    @Test("bit-packing follows the spec example: 0..7 at bit width 3 → 0x88 0xC6 0xFA")
    func specBitPackingExample() {
        let out = ByteBuffer()
        let values: [UInt32] = [0, 1, 2, 3, 4, 5, 6, 7]
        values.withUnsafeBufferPointer { RleHybrid.encode($0, bitWidth: 3, into: out) }
        #expect(out.array == [0x03, 0x88, 0xC6, 0xFA])
    }

    @Test("random runs and noise round-trip through an independent decoder at every bit width")
    func hybridRoundTrip() throws {
        var rng = SplitMix64(seed: 99)
        for width in [0, 1, 2, 3, 5, 8, 12, 17, 24, 31, 32] {
            for _ in 0..<20 {
                let maxValue: UInt64 = width == 0 ? 0 : (width == 32 ? UInt64(UInt32.max) : (1 << UInt64(width)) - 1)
                var values: [UInt32] = []
                let n = Int(rng.next() % 3000) + 1
                while values.count < n {
                    let v = UInt32(maxValue == 0 ? 0 : rng.next() % (maxValue + 1))
                    let run = rng.next() % 4 == 0 ? Int(rng.next() % 40) + 1 : 1
                    values += Array(repeating: v, count: run)
                }
                values = Array(values.prefix(n))
                let out = ByteBuffer()
                values.withUnsafeBufferPointer { RleHybrid.encode($0, bitWidth: width, into: out) }
                #expect(try decodeHybrid(out.array, bitWidth: width, count: n) == values, "width \(width)")
            }
        }
    }

    @Test("truncated string maxima are valid UTF-8 upper bounds; minima are UTF-8-aligned prefixes")
    func statisticsTruncation() {
        var rng = SplitMix64(seed: 5)
        let alphabet: [String] = ["a", "z", "é", "中", "🦀", "\u{FFFF}", "\u{10FFFF}", "\u{D7FF}", "~"]
        for _ in 0..<2_000 {
            let s = (0..<Int(rng.next() % 40 + 1)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }.joined()
            let bytes = Array(s.utf8)
            let limit = Int(rng.next() % 20) + 1
            let cut = utf8Boundary(bytes, atMost: limit)
            #expect(cut <= limit && String(validating: bytes[..<cut], as: UTF8.self) != nil)
            if let upper = roundUpTruncated(bytes, limit: limit) {
                #expect(!upper.lexicographicallyPrecedes(bytes), "\(s) limit \(limit)")
                #expect(upper.count <= limit + 4)
                #expect(String(validating: upper, as: UTF8.self) != nil)
            } else {
                // Only possible when every scalar of the prefix is U+10FFFF.
                #expect(bytes[..<cut].allSatisfy { [0xF4, 0x8F, 0xBF].contains($0) })
            }
        }
    }

    @Test("dictionaries find every entry again after growing their table many times, and after release()")
    func dictionariesKeepEntriesAcrossGrowth() {
        var rng = SplitMix64(seed: 11)
        // 5,000 distinct values grow the 64-slot tables seven times. Every value is looked up
        // again in shuffled order: an entry misplaced by a growth would be inserted a second
        // time (the values would still read back right, only the dictionary would bloat).
        let n = 5_000
        let strings = (0..<n).map { "value-\($0)-" + String(repeating: "x", count: $0 % 23) }
        let ints = (0..<n).map { Int64($0) &* 0x1_0000_0001 &- 2_500 }
        let bytes = BytesDictionary(), wide = IntDictionary(width: 8)
        for round in 0..<2 {
            var order = Array(0..<n)
            for i in order.indices.reversed() { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            var stringIndex: [Int: UInt32] = [:], intIndex: [Int: UInt32] = [:]
            var wrong = 0
            for pass in 0..<3 {
                for i in order {
                    var inserted = false, intInserted = false
                    var s = strings[i]
                    let si = s.withUTF8 { bytes.index(of: $0.baseAddress!, count: $0.count, inserted: &inserted) }
                    let ii = wide.index(of: ints[i], inserted: &intInserted)
                    if pass == 0 {
                        stringIndex[i] = si
                        intIndex[i] = ii
                        if !inserted || !intInserted { wrong += 1 }
                    } else if inserted || intInserted || stringIndex[i] != si || intIndex[i] != ii {
                        wrong += 1
                    }
                }
            }
            #expect(wrong == 0, "round \(round): \(wrong) lookups inserted again or moved")
            #expect(bytes.count == n && wide.count == n)
            // The entries are the values, PLAIN-encoded.
            for i in [0, 1, 63, 64, 2_047, n - 1] {
                let out = ByteBuffer()
                bytes.appendPlain(Int(stringIndex[i]!), to: out)
                let utf8 = Array(strings[i].utf8)
                #expect(out.array == withUnsafeBytes(of: UInt32(utf8.count).littleEndian, Array.init) + utf8)
                let intOut = ByteBuffer()
                wide.appendPlain(Int(intIndex[i]!), to: intOut)
                #expect(intOut.array == withUnsafeBytes(of: ints[i].littleEndian, Array.init))
            }
            bytes.release()
            wide.release()
            #expect(bytes.count == 0 && wide.count == 0)
        }
    }
}
