import Foundation
import Logging
import Synchronization

/// Caches another provider's credentials and refreshes them before they expire.
///
/// ``credentials(now:)`` returns the cached credentials while more than ``refreshMargin``
/// remains before their expiry (long-term keys never expire). Inside the margin one caller
/// fetches new ones; the others keep using the still-valid old ones meanwhile. A failed
/// refresh while the old credentials are still valid keeps them, logs a warning and tries
/// again at most every ``retryInterval``; once they have expired, callers get a
/// ``CredentialError`` (`expired`) naming the provider.
///
/// Thread-safe: the cache is behind a `Mutex`, and one refresh runs at a time.
public final class RefreshingCredentialProvider: AWSCredentialProvider {
    /// The provider whose credentials are cached.
    public let provider: any AWSCredentialProvider
    /// Refresh when less than this remains before expiry (seconds). Default 300.
    public let refreshMargin: TimeInterval
    /// After a failed refresh of still-valid credentials, wait this long before trying again.
    public let retryInterval: TimeInterval
    private let logger: Logger?

    private struct State {
        var cached: AWSCredentials?
        var refreshing = false
        var nextAttempt: Date = .distantPast
        var fetches = 0
    }

    private let state = Mutex(State())
    /// Serializes fetches so an expiring credential is fetched once, not by every caller.
    private let fetchLock = Mutex(())

    /// - Parameters:
    ///   - provider: the provider to cache.
    ///   - refreshMargin: seconds before expiry at which to refresh.
    ///   - retryInterval: seconds between refresh attempts after a failure (while still valid).
    ///   - logger: receives a warning when a refresh fails; never secrets.
    public init(provider: any AWSCredentialProvider, refreshMargin: TimeInterval = 300, retryInterval: TimeInterval = 10,
                logger: Logger? = nil) {
        self.provider = provider
        self.refreshMargin = max(0, refreshMargin)
        self.retryInterval = max(0, retryInterval)
        self.logger = logger
    }

    public var providerDescription: String { provider.providerDescription }

    /// How many times the underlying provider was asked for credentials.
    public var fetchCount: Int { state.withLock { $0.fetches } }

    public func fetchCredentials() throws -> AWSCredentials { try credentials() }

    private func isFresh(_ c: AWSCredentials, _ now: Date) -> Bool {
        guard let expiration = c.expiration else { return true }
        return now < expiration.addingTimeInterval(-refreshMargin)
    }

    private func isValid(_ c: AWSCredentials, _ now: Date) -> Bool {
        guard let expiration = c.expiration else { return true }
        return now < expiration
    }

    /// The current credentials, refreshed first when they are within the margin of expiry.
    /// - Throws: ``CredentialError``: the provider's error when nothing valid is cached, or
    ///   `expired` when the cached credentials expired and the refresh failed.
    public func credentials(now: Date = Date()) throws(CredentialError) -> AWSCredentials {
        // Fast path: fresh, or still valid while another caller refreshes or a retry waits.
        let cached: AWSCredentials? = state.withLock { s in
            guard let c = s.cached else { return nil }
            if isFresh(c, now) { return c }
            if isValid(c, now) && (s.refreshing || now < s.nextAttempt) { return c }
            return nil
        }
        if let cached { return cached }
        return try fetchLock.withLock { _ throws(CredentialError) -> AWSCredentials in
            // Another caller may have refreshed while this one waited.
            let current = state.withLock { s -> AWSCredentials? in
                if let c = s.cached, isFresh(c, now) { return c }
                s.refreshing = true
                return nil
            }
            if let current { return current }
            defer { state.withLock { $0.refreshing = false } }
            do throws(CredentialError) {
                let fresh = try fetch()
                state.withLock { s in
                    s.cached = fresh
                    s.nextAttempt = .distantPast
                }
                return fresh
            } catch {
                let old = state.withLock { s -> AWSCredentials? in
                    guard let c = s.cached, isValid(c, now) else { return nil }
                    s.nextAttempt = now.addingTimeInterval(retryInterval)
                    return c
                }
                if let old {
                    logger?.warning("credential refresh failed; using the current credentials until they expire",
                                    metadata: ["credentials.provider": "\(provider.providerDescription)",
                                               "credentials.expires": "\(old.expiration.map { "\($0)" } ?? "never")",
                                               "error": "\(error)"])
                    return old
                }
                let hadCredentials = state.withLock { $0.cached != nil }
                guard hadCredentials else { throw error }
                throw CredentialError(code: .expired, provider: provider.providerDescription,
                                      message: "the credentials expired and the refresh failed: \(error.message)",
                                      isRetryable: error.isRetryable)
            }
        }
    }

    private func fetch() throws(CredentialError) -> AWSCredentials {
        state.withLock { $0.fetches += 1 }
        do {
            return try provider.fetchCredentials()
        } catch let error as CredentialError {
            throw error
        } catch {
            throw CredentialError(code: .fetchFailed, provider: provider.providerDescription, message: "\(error)")
        }
    }
}
