import Pipeline
import Testing

/// ``HeapTuning`` changes a process-wide allocator setting, so these tests check the decision
/// (set it, or leave the user's `GLIBC_TUNABLES` alone) and that glibc accepts the value; the
/// effect on peak RSS is measured by `make bench-e2e` (docs/benchmarks.md), not asserted here.
@Suite("HeapTuning")
struct HeapTuningTests {
    @Test("without an mmap_threshold tunable the threshold is set, and glibc accepts it")
    func setsThreshold() {
        #if canImport(Glibc)
        #expect(HeapTuning.limitHeapRetention(tunables: nil))
        #expect(HeapTuning.limitHeapRetention(tunables: "glibc.malloc.arena_max=2:glibc.malloc.tcache_count=0"))
        #endif
    }

    @Test("a GLIBC_TUNABLES mmap_threshold wins over the engine's default")
    func userTunableWins() {
        #expect(!HeapTuning.limitHeapRetention(tunables: "glibc.malloc.mmap_threshold=1048576"))
        #expect(!HeapTuning.limitHeapRetention(tunables: "glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=65536"))
    }
}
