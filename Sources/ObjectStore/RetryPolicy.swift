import Foundation

/// Exponential backoff with full jitter ("Exponential Backoff And Jitter", AWS Architecture
/// Blog, 2015): before attempt n+1 sleep a uniformly random time in
/// `0 ... min(maxDelay, baseDelay * 2^(n-1))`. Retries stop after `maxAttempts` attempts or when
/// the next sleep would end past the deadline.
///
/// The one backoff rule of the project: `S3Store` retries each request with it (a few attempts
/// within `retry_deadline`), and the engine's step retries (`Pipeline.RetryLoop`) use it
/// unbounded, capped at 30 s a sleep.
public struct RetryPolicy: Sendable, Equatable {
    public var maxAttempts: Int
    public var deadline: TimeInterval
    public var baseDelay: TimeInterval
    public var maxDelay: TimeInterval

    public init(maxAttempts: Int, deadline: TimeInterval, baseDelay: TimeInterval, maxDelay: TimeInterval) {
        self.maxAttempts = maxAttempts
        self.deadline = deadline
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// The sleep before the attempt after `attempt` (1-based), or nil when retrying must stop.
    /// - Parameters:
    ///   - attempt: the attempt that just failed.
    ///   - elapsed: seconds since the first attempt started.
    public func delay(after attempt: Int, elapsed: TimeInterval) -> TimeInterval? {
        guard attempt < maxAttempts else { return nil }
        let cap = min(maxDelay, baseDelay * pow(2, Double(attempt - 1)))
        let delay = cap > 0 ? Double.random(in: 0...cap) : 0
        guard elapsed + delay < deadline else { return nil }
        return delay
    }
}
