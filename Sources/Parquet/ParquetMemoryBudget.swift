/// A limit on the row-group bytes that all writers sharing one ``ParquetWriterScratch`` buffer
/// together (a process with one open writer per Kafka partition: the limit holds across
/// partitions, not per writer).
///
/// Each writer reports its buffered bytes (``ParquetWriter/estimatedBufferedBytes``) whenever it
/// measures them anyway (every 32 rows, after a large value, after writing a row group), so the
/// running total costs O(1) per row. When the total exceeds ``limit``, the budget writes the row
/// groups of the writers holding the most, largest first, to their outputs until the total is at
/// most ``target``: the writers stay open (a file just gets one more row group), so what a file
/// holds does not change, only how its rows are grouped. Because the scan over the writers stops
/// at ``target`` (three quarters of the limit), the next one is at least a quarter of the limit
/// of new rows away.
///
/// Between two measurements a writer may hold up to 32 rows (or one large value) more than it
/// reported. A row group can only be written once it has rows, so many writers of a few rows each
/// produce small row groups: readers pay for that, not memory.
///
/// Not thread-safe: like the scratch it belongs to, only for writers used from one thread.
public final class ParquetMemoryBudget {
    /// Buffered bytes above which row groups are written early.
    public let limit: Int
    /// What an early write brings the total down to (3/4 of ``limit``).
    public let target: Int
    /// Sum of the registered writers' buffered bytes as last reported.
    public private(set) var bufferedBytes = 0
    /// The highest total left after a report (and the early writes it caused): what the budget held.
    public private(set) var peakBufferedBytes = 0
    /// Row groups written early to keep the total within ``limit``.
    public private(set) var earlyRowGroups = 0
    /// Writers registered now (open writers sharing the scratch).
    public var writers: Int { members.count }
    private var members: [ObjectIdentifier: Unmanaged<ParquetWriter>] = [:]
    private var enforcing = false

    /// - Parameter limit: bytes (encoded, uncompressed: pages, open pages, dictionaries) all
    ///   writers together may buffer; at least 1.
    public init(limit: Int) {
        self.limit = max(1, limit)
        self.target = max(1, limit / 4 * 3)
    }

    func register(_ writer: ParquetWriter) {
        members[ObjectIdentifier(writer)] = .passUnretained(writer)
    }

    /// Called by a closing or deinitialising writer with what it last reported.
    func unregister(_ writer: ParquetWriter, reported: Int) {
        members[ObjectIdentifier(writer)] = nil
        bufferedBytes -= reported
    }

    /// A writer's buffered bytes went from `old` to `new` (both as reported).
    func report(from old: Int, to new: Int) {
        bufferedBytes += new - old
        if bufferedBytes > limit && !enforcing {
            enforce()
        }
        if !enforcing && bufferedBytes > peakBufferedBytes {
            peakBufferedBytes = bufferedBytes
        }
    }

    /// Writes the row groups of the writers holding the most until the total is at most `target`.
    /// A writer whose write fails keeps the error and throws it at its next call (as after its
    /// own row-group write); the others go on.
    private func enforce() {
        enforcing = true
        defer { enforcing = false }
        var candidates = members.values.map { writer in
            (writer, writer._withUnsafeGuaranteedRef { w in w.reportedBufferedBytes })
        }
        candidates.sort { $0.1 > $1.1 }
        for (writer, bytes) in candidates {
            guard bufferedBytes > target, bytes > 0 else { break }
            let wrote = writer._withUnsafeGuaranteedRef { w -> Bool in
                guard w.bufferedRows > 0 else { return false }
                do { try w.flushRowGroup() } catch { return false }
                return true
            }
            if wrote { earlyRowGroups += 1 }
        }
    }
}
