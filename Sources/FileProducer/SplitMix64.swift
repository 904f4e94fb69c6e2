/// SplitMix64 (Steele, Lea, Flood 2014; the seeding generator of xoshiro): a small, fast,
/// seedable generator. `etl-loggen` uses it instead of `SystemRandomNumberGenerator` so that the
/// same seed yields the same bytes on every machine and Swift version.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// - Parameter seed: any value; equal seeds give equal sequences.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform integer in `range`, computed from one draw (`next() % span`: the bias is below
    /// 2^-50 for the small spans used here, and the result does not depend on the standard
    /// library's sampling algorithm, which may change between Swift versions).
    public mutating func int(in range: ClosedRange<Int>) -> Int {
        let span = UInt64(range.upperBound - range.lowerBound) + 1
        return range.lowerBound + Int(next() % span)
    }

    /// A uniform double in [0, 1) from the top 53 bits of one draw.
    public mutating func unit() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }
}
