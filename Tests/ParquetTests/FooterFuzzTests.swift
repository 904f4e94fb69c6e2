import Foundation
import Parquet
import Testing

/// Seeded fuzzing of the footer reader: random and mutated footers must produce a result or a
/// `ParquetError`, never a crash (a trap would abort the whole test process).
@Suite("Footer reader fuzzing")
struct FooterFuzzTests {
    static func seeds() throws -> [[UInt8]] {
        [
            try FooterReaderTests.sampleFile(rows: 50),
            try FooterReaderTests.sampleFile(rows: 0, kv: []),
            try FooterReaderTests.sampleFile(rows: 3, kv: [("a", "é"), ("long", String(repeating: "x", count: 300))]),
        ]
    }

    /// Footer body (FileMetaData bytes) of a file.
    static func body(_ file: [UInt8]) throws -> [UInt8] {
        let total = try ParquetFooter.trailerLength(last8: Array(file.suffix(8)))
        return Array(file[(file.count - total)..<(file.count - 8)])
    }

    static func mutate(_ input: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var b = input
        let operations = 1 + Int(rng.next() % 4)
        for _ in 0..<operations where !b.isEmpty {
            let i = Int(rng.next() % UInt64(b.count))
            switch rng.next() % 8 {
            case 0: b[i] ^= UInt8(1 << (rng.next() % 8))
            case 1: b[i] = UInt8(truncatingIfNeeded: rng.next())
            case 2: b.remove(at: i)
            case 3: b.insert(UInt8(truncatingIfNeeded: rng.next()), at: i)
            case 4: b = Array(b[..<i])
            case 5: b[i] = [0x00, 0xFF, 0x7F, 0x80, 0x0F, 0xF0, 0x19, 0x1C][Int(rng.next() % 8)]
            case 6:
                // Duplicate a random span (repeats structs and list elements).
                let j = min(b.count, i + Int(rng.next() % 64))
                b.insert(contentsOf: b[i..<j], at: j)
            default:
                // Overwrite with a varint of random size.
                let v = rng.next() >> (rng.next() % 64)
                var x = v
                var k = i
                while k < b.count {
                    b[k] = UInt8(x & 0x7F) | (x > 0x7F ? 0x80 : 0)
                    x >>= 7
                    k += 1
                    if x == 0 { break }
                }
            }
        }
        return b
    }

    @Test("20,000 mutated footers of real files never crash the decoder")
    func mutatedFooters() throws {
        var rng = SplitMix64(seed: 0xF00D)
        let bodies = try Self.seeds().map(Self.body)
        var accepted = 0
        var rejected = 0
        for iteration in 0..<20_000 {
            let seed = bodies[iteration % bodies.count]
            let mutated = Self.mutate(seed, &rng)
            do {
                let metadata = try ParquetFooter.decode(tail: FooterReaderTests.tail(mutated))
                #expect(metadata.footerLength == mutated.count)
                accepted += 1
            } catch is ParquetError {
                rejected += 1
            }
        }
        // Both outcomes must occur, or the mutations are not exercising the decoder.
        #expect(accepted > 0)
        #expect(rejected > 0)
    }

    @Test("3,000 random byte strings and random trailers never crash the decoder")
    func randomFooters() throws {
        var rng = SplitMix64(seed: 1234)
        for _ in 0..<3_000 {
            let n = Int(rng.next() % 600)
            var bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if rng.next() % 2 == 0 {
                // Plausible-looking start: a struct with a version field.
                bytes = [0x15, 0x02] + bytes
            }
            let tail: [UInt8]
            switch rng.next() % 3 {
            case 0: tail = FooterReaderTests.tail(bytes)
            case 1: tail = bytes + Array("PAR1".utf8)
            default:
                // Length field pointing anywhere.
                let length = UInt32(truncatingIfNeeded: rng.next() % UInt64(max(bytes.count * 2, 1)))
                tail = bytes + withUnsafeBytes(of: length.littleEndian, Array.init) + Array("PAR1".utf8)
            }
            do {
                _ = try ParquetFooter.decode(tail: tail)
            } catch is ParquetError {
            }
            if tail.count >= 8 {
                do {
                    _ = try ParquetFooter.trailerLength(last8: Array(tail.suffix(8)))
                } catch is ParquetError {
                }
            }
        }
    }
}
