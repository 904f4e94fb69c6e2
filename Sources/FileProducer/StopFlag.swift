import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

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

extension StopFlag {
    /// Blocks SIGTERM and SIGINT in every thread (call it before starting others) and starts a
    /// thread that receives them: the first calls `onFirst` with the signal number and requests
    /// the stop; with `secondSignalMessage`, a second one writes it to stderr and exits at once
    /// with status 130. Returns the flag the signals set.
    public static func onShutdownSignals(onFirst: @escaping @Sendable (Int32) -> Void = { _ in },
                                         secondSignalMessage: String? = nil) -> StopFlag {
        let stop = StopFlag()
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        let blocked = set
        Thread.detachNewThread {
            var s = blocked
            var sig: Int32 = 0
            sigwait(&s, &sig)
            onFirst(sig)
            stop.request()
            guard let secondSignalMessage else { return }
            sigwait(&s, &sig)
            FileHandle.standardError.write(Data((secondSignalMessage + "\n").utf8))
            _exit(130)
        }
        return stop
    }
}
