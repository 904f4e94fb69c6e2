/// DELTA_BINARY_PACKED (parquet.thrift `Encoding` 5; Encodings.md, "Delta Encoding") for INT64
/// values.
///
/// Layout: header `<block size> <miniblocks per block> <total value count> <first value>`
/// (ULEB128, ULEB128, ULEB128, zigzag ULEB128), then per block of deltas `<min delta>` (zigzag
/// ULEB128), one bit-width byte per miniblock, and the miniblocks: each delta minus the min
/// delta, bit-packed least significant bit first (as in the RLE/bit-packing hybrid). Deltas wrap
/// in two's complement. A miniblock that holds values is padded with zeros to its full length;
/// the last block's unused miniblocks have width 0 and no bytes.
///
/// Sequential offsets and serials become 0-bit miniblocks; millisecond timestamps a few bits per
/// value. The page is then much smaller to compress than PLAIN's 8 bytes a value.
enum DeltaBinaryPacked {
    static let blockSize = 128
    static let miniblocksPerBlock = 4
    static let miniblockSize = blockSize / miniblocksPerBlock

    /// Appends the encoding of `count` little-endian INT64 values read from `values` to `out`.
    static func encodeInt64(_ values: UnsafeRawBufferPointer, count: Int, into out: ByteBuffer) {
        precondition(values.count >= count * 8)
        out.appendVarint(UInt64(blockSize))
        out.appendVarint(UInt64(miniblocksPerBlock))
        out.appendVarint(UInt64(count))
        guard count > 0 else {
            out.appendVarint(0)
            return
        }
        @inline(__always) func value(_ i: Int) -> Int64 {
            Int64(littleEndian: values.loadUnaligned(fromByteOffset: i &* 8, as: Int64.self))
        }
        var previous = value(0)
        out.appendVarint(zigzag(previous))
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: blockSize) { deltas in
            var i = 1
            while i < count {
                let n = min(blockSize, count - i)
                var minDelta = Int64.max
                for k in 0..<n {
                    let v = value(i &+ k)
                    let d = v &- previous
                    previous = v
                    deltas[k] = UInt64(bitPattern: d)
                    minDelta = min(minDelta, d)
                }
                let base = UInt64(bitPattern: minDelta)
                for k in 0..<n { deltas[k] = deltas[k] &- base }
                for k in n..<blockSize { deltas[k] = 0 }
                out.appendVarint(zigzag(minDelta))
                var widths: (UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0)
                withUnsafeMutableBytes(of: &widths) { w in
                    for m in 0..<miniblocksPerBlock where m * miniblockSize < n {
                        var any: UInt64 = 0
                        for k in (m * miniblockSize)..<((m + 1) * miniblockSize) { any |= deltas[k] }
                        w[m] = UInt8(64 - any.leadingZeroBitCount)
                    }
                    out.append(UnsafeRawBufferPointer(w))
                    for m in 0..<miniblocksPerBlock where m * miniblockSize < n {
                        pack(UnsafeBufferPointer(rebasing: deltas[(m * miniblockSize)..<((m + 1) * miniblockSize)]),
                             width: Int(w[m]), into: out)
                    }
                }
                i &+= n
            }
        }
    }

    /// Zigzag: 0, -1, 1, -2 ... -> 0, 1, 2, 3 ...
    @inline(__always)
    static func zigzag(_ v: Int64) -> UInt64 {
        UInt64(bitPattern: (v << 1) ^ (v >> 63))
    }

    /// Bit-packs `values` (each < 2^width), least significant bit first; `values.count * width`
    /// must be a multiple of 8 (a miniblock is 32 values).
    private static func pack(_ values: UnsafeBufferPointer<UInt64>, width: Int, into out: ByteBuffer) {
        guard width > 0 else { return }
        var acc: UInt64 = 0
        var bits = 0
        for x in values {
            acc |= x << UInt64(bits)
            let free = 64 - bits
            if width >= free {
                out.appendLittleEndian(acc)
                acc = x >> UInt64(free)   // smart shift: 0 when free == 64
                bits = width - free
            } else {
                bits += width
            }
        }
        var rest = acc
        for _ in 0..<(bits / 8) {
            out.append(byte: UInt8(truncatingIfNeeded: rest))
            rest >>= 8
        }
    }
}
