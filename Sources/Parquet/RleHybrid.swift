/// The RLE / bit-packing hybrid encoding (parquet-format Encodings.md, "Run Length Encoding /
/// Bit-Packing Hybrid"), used for definition levels and dictionary indices.
///
/// ```
/// rle-run        := varint(run-len << 1)  value in ceil(bit-width / 8) bytes, little endian
/// bit-packed-run := varint(groups << 1 | 1)  groups of 8 values, LSB first, bit-width bits each
/// ```
/// Runs of 8 or more equal values become RLE runs; everything else is bit-packed, at most 63
/// groups per run so the header is a single byte. The last group is zero-padded, which the spec
/// allows because readers stop at the page's value count. No length prefix is written here.
enum RleHybrid {
    /// Bits needed to represent every value in `0...maxValue` (0 for 0).
    @inline(__always)
    static func bitWidth(forMax maxValue: UInt32) -> Int {
        maxValue == 0 ? 0 : 32 - maxValue.leadingZeroBitCount
    }

    static func encode<T: FixedWidthInteger & UnsignedInteger>(
        _ values: UnsafeBufferPointer<T>, bitWidth: Int, into out: ByteBuffer
    ) {
        let n = values.count
        guard n > 0 else { return }
        let byteWidth = (bitWidth + 7) / 8
        if bitWidth == 0 {
            // Every value is 0: one RLE run with a zero-byte value.
            out.appendVarint(UInt64(n) << 1)
            return
        }
        var i = 0
        while i < n {
            let v = values[i]
            var j = i &+ 1
            while j < n && values[j] == v {
                j &+= 1
            }
            if j - i >= 8 {
                out.appendVarint(UInt64(j - i) << 1)
                appendValue(UInt64(v), byteWidth: byteWidth, into: out)
                i = j
                continue
            }
            let headerPosition = out.count
            out.append(byte: 0)
            var groups = 0
            while true {
                packGroup(values, from: i, bitWidth: bitWidth, into: out)
                i &+= 8
                groups &+= 1
                if i >= n || groups == 63 {
                    break
                }
                let w = values[i]
                var k = i &+ 1
                let limit = min(n, i &+ 8)
                while k < limit && values[k] == w {
                    k &+= 1
                }
                if k - i >= 8 {
                    break
                }
            }
            out.base.storeBytes(of: UInt8(groups << 1 | 1), toByteOffset: headerPosition, as: UInt8.self)
        }
    }

    @inline(__always)
    private static func appendValue(_ v: UInt64, byteWidth: Int, into out: ByteBuffer) {
        var x = v
        for _ in 0..<byteWidth {
            out.append(byte: UInt8(truncatingIfNeeded: x))
            x >>= 8
        }
    }

    /// Packs values[start..<start+8] (zero past the end) into exactly `bitWidth` bytes, LSB first.
    @inline(__always)
    private static func packGroup<T: FixedWidthInteger & UnsignedInteger>(
        _ values: UnsafeBufferPointer<T>, from start: Int, bitWidth: Int, into out: ByteBuffer
    ) {
        out.reserve(bitWidth)
        let n = values.count
        var acc: UInt64 = 0
        var bits = 0
        var p = out.base + out.count
        for k in 0..<8 {
            let index = start &+ k
            let v: UInt64 = index < n ? UInt64(values[index]) : 0
            acc |= v << UInt64(bits)
            bits &+= bitWidth
            while bits >= 8 {
                p.storeBytes(of: UInt8(truncatingIfNeeded: acc), as: UInt8.self)
                p += 1
                acc >>= 8
                bits &-= 8
            }
        }
        out.setCount(out.count + bitWidth)
    }
}
