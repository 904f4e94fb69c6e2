/// A growable, contiguous byte buffer used for page bodies, dictionaries and Thrift output.
///
/// It owns one heap allocation and never shrinks, so buffers that are reused across pages and
/// row groups stop allocating once they have reached their working size. All multi-byte
/// integers are stored little-endian, as Parquet's PLAIN encoding requires (Encodings.md).
final class ByteBuffer {
    private(set) var base: UnsafeMutableRawPointer
    private(set) var count: Int = 0
    private(set) var capacity: Int

    init(capacity: Int = 1024) {
        self.capacity = max(capacity, 16)
        self.base = UnsafeMutableRawPointer.allocate(byteCount: self.capacity, alignment: 16)
    }

    deinit {
        base.deallocate()
    }

    /// The bytes written so far. Valid until the next mutation.
    var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base, count: count)
    }

    /// Copies the contents into a new array (tests and footers only; not for the hot path).
    var array: [UInt8] {
        [UInt8](bytes)
    }

    @inline(__always)
    func reserve(_ extra: Int) {
        if count &+ extra > capacity {
            grow(to: count + extra)
        }
    }

    private func grow(to needed: Int) {
        var newCapacity = capacity
        while newCapacity < needed {
            newCapacity = newCapacity < (1 << 20) ? newCapacity * 2 : newCapacity + newCapacity / 2
        }
        let newBase = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        newBase.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    /// Declares the first `n` bytes (already written through `base` after `reserve`) as the contents.
    func setCount(_ n: Int) {
        precondition(n >= 0 && n <= capacity)
        count = n
    }

    /// Forgets the contents but keeps the allocation.
    @inline(__always)
    func removeAll() {
        count = 0
    }

    /// Releases memory beyond `limit` bytes, for buffers that spiked (for example a page holding one huge string).
    func shrink(ifAbove limit: Int) {
        guard capacity > limit, count <= limit else { return }
        let newBase = UnsafeMutableRawPointer.allocate(byteCount: limit, alignment: 16)
        newBase.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = newBase
        capacity = limit
    }

    @inline(__always)
    func append(byte: UInt8) {
        reserve(1)
        base.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count &+= 1
    }

    @inline(__always)
    func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        let size = MemoryLayout<T>.size
        reserve(size)
        base.storeBytes(of: value.littleEndian, toByteOffset: count, as: T.self)
        count &+= size
    }

    @inline(__always)
    func append(_ source: UnsafeRawPointer, count n: Int) {
        guard n > 0 else { return }
        reserve(n)
        (base + count).copyMemory(from: source, byteCount: n)
        count &+= n
    }

    @inline(__always)
    func append(_ bytes: UnsafeRawBufferPointer) {
        if let start = bytes.baseAddress {
            append(start, count: bytes.count)
        }
    }

    func append(contentsOf array: [UInt8]) {
        array.withUnsafeBytes { append($0) }
    }

    /// Unsigned LEB128, as used by Thrift compact varints and RLE run headers.
    @inline(__always)
    func appendVarint(_ value: UInt64) {
        reserve(10)
        var v = value
        while v >= 0x80 {
            base.storeBytes(of: UInt8(truncatingIfNeeded: v) | 0x80, toByteOffset: count, as: UInt8.self)
            count &+= 1
            v >>= 7
        }
        base.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: count, as: UInt8.self)
        count &+= 1
    }

    /// Overwrites 4 bytes at `offset` with a little-endian UInt32 (length prefixes written after the fact).
    func setUInt32LE(_ value: UInt32, at offset: Int) {
        precondition(offset >= 0 && offset + 4 <= count)
        base.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt32.self)
    }
}

/// A growable array of UInt32 without Swift array uniqueness checks (dictionary indices of a page).
final class UInt32Buffer {
    private(set) var base: UnsafeMutablePointer<UInt32>
    private(set) var count: Int = 0
    private(set) var capacity: Int

    init(capacity: Int = 1024) {
        self.capacity = max(capacity, 16)
        self.base = UnsafeMutablePointer<UInt32>.allocate(capacity: self.capacity)
    }

    deinit {
        base.deallocate()
    }

    @inline(__always)
    func append(_ value: UInt32) {
        if count == capacity {
            grow()
        }
        base[count] = value
        count &+= 1
    }

    private func grow() {
        let newCapacity = capacity * 2
        let newBase = UnsafeMutablePointer<UInt32>.allocate(capacity: newCapacity)
        newBase.update(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    @inline(__always)
    func removeAll() {
        count = 0
    }

    var buffer: UnsafeBufferPointer<UInt32> {
        UnsafeBufferPointer(start: base, count: count)
    }
}
