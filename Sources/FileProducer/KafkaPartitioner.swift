/// Kafka's default partitioner for keyed records, computed here so that `etl-produce` passes
/// every partition explicitly and can reason about each partition when it resumes.
///
/// `partition = (murmur2(key) & 0x7fffffff) % partitionCount`: the Java client's
/// `Utils.toPositive(Utils.murmur2(key)) % numPartitions` and librdkafka's `murmur2_random`
/// partitioner, so other clients place the same key on the same partition.
public enum KafkaPartitioner {
    /// Kafka's 32-bit murmur2 (seed `0x9747b28c`), as `org.apache.kafka.common.utils.Utils.murmur2`.
    public static func murmur2(_ data: [UInt8]) -> UInt32 {
        let m: UInt32 = 0x5BD1_E995
        let r: UInt32 = 24
        let length = data.count
        var h: UInt32 = 0x9747_B28C ^ UInt32(truncatingIfNeeded: length)
        let blocks = length / 4
        for i in 0..<blocks {
            let b = i * 4
            var k = UInt32(data[b]) | UInt32(data[b + 1]) << 8 | UInt32(data[b + 2]) << 16 | UInt32(data[b + 3]) << 24
            k = k &* m
            k ^= k >> r
            k = k &* m
            h = h &* m
            h ^= k
        }
        let tail = blocks * 4
        switch length % 4 {
        case 3:
            h ^= UInt32(data[tail + 2]) << 16
            h ^= UInt32(data[tail + 1]) << 8
            h ^= UInt32(data[tail])
            h = h &* m
        case 2:
            h ^= UInt32(data[tail + 1]) << 8
            h ^= UInt32(data[tail])
            h = h &* m
        case 1:
            h ^= UInt32(data[tail])
            h = h &* m
        default:
            break
        }
        h ^= h >> 13
        h = h &* m
        h ^= h >> 15
        return h
    }

    /// The partition for `key` among `partitionCount` partitions.
    public static func partition(forKey key: [UInt8], partitionCount: Int) -> Int32 {
        Int32((murmur2(key) & 0x7FFF_FFFF) % UInt32(partitionCount))
    }

    /// The `--key serial` key of a line: its bytes up to the first space (the whole line when
    /// it has none; empty for an empty line).
    public static func serialKey(of line: [UInt8]) -> [UInt8] {
        guard let space = line.firstIndex(of: 0x20) else { return line }
        return Array(line[..<space])
    }
}
