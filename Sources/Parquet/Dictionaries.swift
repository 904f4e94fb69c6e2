#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Fibonacci hashing constant (2^64 / golden ratio).
private let golden: UInt64 = 0x9E37_79B9_7F4A_7C15

/// A 64-bit hash over a byte slice, eight bytes at a time. Not cryptographic; the table is per
/// column chunk and bounded by `dictionaryMaxBytes`, so adversarial collisions cost only time.
@inline(__always)
func hashBytes(_ p: UnsafeRawPointer, _ n: Int) -> UInt64 {
    var h: UInt64 = 0x243F_6A88_85A3_08D3 ^ UInt64(truncatingIfNeeded: n)
    var i = 0
    while i &+ 8 <= n {
        let w = p.loadUnaligned(fromByteOffset: i, as: UInt64.self)
        h = (h ^ w) &* golden
        h ^= h >> 29
        i &+= 8
    }
    if i < n {
        var w: UInt64 = 0
        var shift: UInt64 = 0
        while i < n {
            w |= UInt64(p.load(fromByteOffset: i, as: UInt8.self)) << shift
            shift &+= 8
            i &+= 1
        }
        h = (h ^ w) &* golden
        h ^= h >> 29
    }
    return h
}

/// Unsigned byte-wise comparison (Parquet's order for BYTE_ARRAY / UTF8: "unsigned byte-wise
/// comparison", parquet.thrift `ColumnOrder`). Never Swift `String` comparison.
@inline(__always)
func compareBytes(_ a: UnsafeRawPointer, _ aCount: Int, _ b: UnsafeRawPointer, _ bCount: Int) -> Int {
    let c = memcmp(a, b, min(aCount, bCount))
    if c != 0 {
        return Int(c)
    }
    return aCount < bCount ? -1 : (aCount > bCount ? 1 : 0)
}

/// Open-addressing hash table from a slot to an entry number (+1; 0 is empty).
struct SlotTable {
    private(set) var slots: UnsafeMutablePointer<Int32>
    private(set) var capacity: Int
    private(set) var shift: UInt64

    init(capacity: Int) {
        self.capacity = capacity
        self.shift = UInt64(64 - capacity.trailingZeroBitCount)
        self.slots = UnsafeMutablePointer<Int32>.allocate(capacity: capacity)
        self.slots.initialize(repeating: 0, count: capacity)
    }

    func deallocate() {
        slots.deallocate()
    }

    @inline(__always)
    func home(_ hash: UInt64) -> Int {
        Int(truncatingIfNeeded: (hash &* golden) >> shift)
    }

    func clear() {
        slots.update(repeating: 0, count: capacity)
    }

    /// Replaces the table with one of twice the capacity that holds entries `0..<count`, entry
    /// `i` placed by `hash(i)` with the same linear probing as on insert.
    mutating func grow(entries count: Int, hash: (Int) -> UInt64) {
        let bigger = SlotTable(capacity: capacity * 2)
        let mask = bigger.capacity - 1
        for entry in 0..<count {
            var slot = bigger.home(hash(entry))
            while bigger.slots[slot] != 0 {
                slot = (slot &+ 1) & mask
            }
            bigger.slots[slot] = Int32(entry + 1)
        }
        deallocate()
        self = bigger
    }

    /// Gives a grown table's memory back: an empty table of `capacity` slots again.
    mutating func shrink(to capacity: Int) {
        if self.capacity > capacity {
            deallocate()
            self = SlotTable(capacity: capacity)
        }
    }
}

/// Dictionary of distinct byte strings for one column chunk, keyed on the bytes themselves.
///
/// `plain` holds the dictionary page body as it will be written (PLAIN: 4-byte LE length + bytes
/// per entry), so no second copy is made at flush time.
final class BytesDictionary {
    let plain = ByteBuffer(capacity: 1024)
    private var offsets: [Int] = []
    private var lengths: [Int] = []
    private var hashes: [UInt64] = []
    private var table = SlotTable(capacity: 64)

    deinit {
        table.deallocate()
    }

    var count: Int { offsets.count }
    var byteSize: Int { plain.count }

    /// Appends entry `index` PLAIN-encoded (4-byte LE length + bytes) to `out`.
    @inline(__always)
    func appendPlain(_ index: Int, to out: ByteBuffer) {
        out.append(plain.base + offsets[index] - 4, count: lengths[index] + 4)
    }

    func reset() {
        plain.removeAll()
        offsets.removeAll(keepingCapacity: true)
        lengths.removeAll(keepingCapacity: true)
        hashes.removeAll(keepingCapacity: true)
        table.clear()
    }

    /// Empties the dictionary and gives its memory back (a chunk that dropped its dictionary
    /// must not hold the grown table and entries for the rest of the writer's life).
    func release() {
        reset()
        plain.shrink(ifAbove: 1024)
        offsets = []
        lengths = []
        hashes = []
        table.shrink(to: 64)
    }

    /// Returns the entry number of these bytes, inserting them if new.
    @inline(__always)
    func index(of p: UnsafeRawPointer, count n: Int, inserted: inout Bool) -> UInt32 {
        let h = hashBytes(p, n)
        let mask = table.capacity - 1
        var slot = table.home(h)
        while true {
            let e = Int(table.slots[slot])
            if e == 0 {
                break
            }
            let entry = e - 1
            if hashes[entry] == h && lengths[entry] == n
                && memcmp(plain.base + offsets[entry], p, n) == 0
            {
                inserted = false
                return UInt32(entry)
            }
            slot = (slot &+ 1) & mask
        }
        let entry = offsets.count
        plain.appendLittleEndian(UInt32(truncatingIfNeeded: n))
        offsets.append(plain.count)
        lengths.append(n)
        hashes.append(h)
        plain.append(p, count: n)
        table.slots[slot] = Int32(entry + 1)
        inserted = true
        if (entry + 1) * 2 > table.capacity {
            rehash()
        }
        return UInt32(entry)
    }

    private func rehash() {
        table.grow(entries: hashes.count) { hashes[$0] }
    }
}

/// Dictionary of distinct INT32 / INT64 values for one column chunk.
final class IntDictionary {
    let plain = ByteBuffer(capacity: 1024)
    private var values: [Int64] = []
    private var table = SlotTable(capacity: 64)
    /// 4 for INT32 entries, 8 for INT64.
    let width: Int

    init(width: Int) {
        self.width = width
    }

    deinit {
        table.deallocate()
    }

    var count: Int { values.count }
    var byteSize: Int { plain.count }

    /// Appends entry `index` PLAIN-encoded (4 or 8 LE bytes) to `out`.
    @inline(__always)
    func appendPlain(_ index: Int, to out: ByteBuffer) {
        out.append(plain.base + index * width, count: width)
    }

    func reset() {
        plain.removeAll()
        values.removeAll(keepingCapacity: true)
        table.clear()
    }

    /// Empties the dictionary and gives its memory back (see `BytesDictionary.release`).
    func release() {
        reset()
        plain.shrink(ifAbove: 1024)
        values = []
        table.shrink(to: 64)
    }

    @inline(__always)
    func index(of v: Int64, inserted: inout Bool) -> UInt32 {
        let mask = table.capacity - 1
        var slot = table.home(UInt64(bitPattern: v))
        while true {
            let e = Int(table.slots[slot])
            if e == 0 {
                break
            }
            if values[e - 1] == v {
                inserted = false
                return UInt32(e - 1)
            }
            slot = (slot &+ 1) & mask
        }
        let entry = values.count
        values.append(v)
        if width == 4 {
            plain.appendLittleEndian(Int32(truncatingIfNeeded: v))
        } else {
            plain.appendLittleEndian(v)
        }
        table.slots[slot] = Int32(entry + 1)
        inserted = true
        if (entry + 1) * 2 > table.capacity {
            rehash()
        }
        return UInt32(entry)
    }

    private func rehash() {
        table.grow(entries: values.count) { UInt64(bitPattern: values[$0]) }
    }
}
