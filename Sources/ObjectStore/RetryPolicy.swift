import Foundation

/// Exponential backoff with full jitter ("Exponential Backoff And Jitter", AWS Architecture
/// Blog, 2015): before attempt n+1 sleep a uniformly random time in
/// `0 ... min(maxDelay, baseDelay * 2^(n-1))`. Retries stop after `maxAttempts` attempts or when
/// the next sleep would end past the deadline.
struct RetryPolicy: Sendable {
    var maxAttempts: Int
    var deadline: TimeInterval
    var baseDelay: TimeInterval
    var maxDelay: TimeInterval

    /// The sleep before the attempt after `attempt` (1-based), or nil when retrying must stop.
    /// - Parameters:
    ///   - attempt: the attempt that just failed.
    ///   - elapsed: seconds since the first attempt started.
    func delay(after attempt: Int, elapsed: TimeInterval) -> TimeInterval? {
        guard attempt < maxAttempts else { return nil }
        let cap = min(maxDelay, baseDelay * pow(2, Double(attempt - 1)))
        let delay = cap > 0 ? Double.random(in: 0...cap) : 0
        guard elapsed + delay < deadline else { return nil }
        return delay
    }
}
