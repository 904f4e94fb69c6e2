#if canImport(Glibc)
import CMalloc
import Glibc
#endif

/// Process-wide allocator settings for the long-running engine.
public enum HeapTuning {
    /// Fixes glibc's mmap threshold at 256 KiB, unless `GLIBC_TUNABLES` already sets one.
    ///
    /// librdkafka's broker threads allocate fetch buffers (up to `max.partition.fetch.bytes`,
    /// 1 MiB) that the poll thread frees. With glibc's default dynamic threshold the first freed
    /// mmapped buffer raises the threshold to its size, later buffers come from per-thread
    /// arenas, and freed space stays in those arenas: peak RSS of the same run varied from 265
    /// to 309 MiB (32 partitions, 200,000 queued records). With a fixed threshold large buffers
    /// are mmapped and returned on free: 234-254 MiB, for ~0.5 s more system CPU per 2,000,000
    /// records (docs/benchmarks.md). Call once at start, before other threads exist.
    ///
    /// - Parameter tunables: the `GLIBC_TUNABLES` value glibc read at start (default: this
    ///   process's environment); when it names `mmap_threshold`, the user's setting stands.
    /// - Returns: whether the threshold was set (false when overridden or not glibc).
    @discardableResult
    public static func limitHeapRetention(tunables: String? = currentTunables()) -> Bool {
        #if canImport(Glibc)
        if let tunables, tunables.contains("mmap_threshold") {
            return false
        }
        // M_MMAP_THRESHOLD (-3): also disables the dynamic adjustment of it and of M_TRIM_THRESHOLD.
        return mallopt(M_MMAP_THRESHOLD, 256 * 1024) == 1
        #else
        return false
        #endif
    }

    /// This process's `GLIBC_TUNABLES`, or nil when unset.
    public static func currentTunables() -> String? {
        #if canImport(Glibc)
        return getenv("GLIBC_TUNABLES").map { String(cString: $0) }
        #else
        return nil
        #endif
    }
}
