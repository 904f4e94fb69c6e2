import Synchronization

/// A stop request shared with a signal-handling thread.
public final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    /// A flag not yet requested.
    public init() {}
    /// Asks the producer to flush, checkpoint and return.
    public func request() { flag.store(true, ordering: .relaxed) }
    /// True once ``request()`` was called.
    public var isRequested: Bool { flag.load(ordering: .relaxed) }
}
