/// `--until-idle`'s end-of-partition cut for one partition: the open batch is sealed once the
/// partition has been at its end with no record read for ``quiet`` (250 ms), so a catch-up run's
/// last commit follows its last record without cutting a partition that is still being written.
///
/// The engine feeds it a snapshot every 50 ms: whether the consumer reports the partition at its
/// end (`_PARTITION_EOF`, nothing received since) and the last offset read. The end-of-partition
/// flag alone is not enough: with several partitions in one fetch, a partition still being written
/// every few milliseconds is reported at its end again right after each of its records (the next
/// fetch response has nothing new for it while another partition had data), so nearly every
/// snapshot sees it "at its end". A record read since the previous snapshot therefore restarts
/// the quiet time. (Found by `make bench-latency`: 137 batches where age cuts alone make 96.)
struct DrainWatch: Sendable, Equatable {
    /// How long a partition must stay at its end, with no record read, before its batch is sealed.
    static let quiet = Duration.milliseconds(250)

    /// When the partition was first seen at its end with this last offset; nil when not.
    private(set) var since: ContinuousClock.Instant?
    private var atOffset: Int64?

    /// Takes one snapshot; returns true when the open batch should be sealed now (the watch is
    /// then reset).
    mutating func observe(atEnd: Bool, lastOffset: Int64?, now: ContinuousClock.Instant) -> Bool {
        guard atEnd else {
            self = DrainWatch()
            return false
        }
        guard let since, atOffset == lastOffset else {
            since = now
            atOffset = lastOffset
            return false
        }
        guard now - since >= Self.quiet else { return false }
        self = DrainWatch()
        return true
    }
}
