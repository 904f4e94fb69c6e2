import Dispatch
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import Pipeline
import ServiceLifecycle
import Synchronization

/// The engine's HTTP endpoints on `[engine] metrics_host:metrics_port`, served by Hummingbird on
/// SwiftNIO's process-wide event loop group (so neither the engine's poll thread nor Swift's
/// cooperative pool carries it, and a slow or idle client never holds up another):
///
/// - `GET /metrics`: Prometheus text exposition (format 0.0.4) of ``EngineMetrics``.
/// - `GET /healthz`: 200 while the poll loop ran within ``EngineHealth/stallLimit``, else 503.
/// - `GET /ready`: 200 when partitions are assigned, the object store answered and no fatal
///   error stopped the engine; else 503 with a body naming the failing conditions.
///
/// Start it with ``start(host:port:metrics:logger:)`` (it returns once the port is bound) and
/// stop it with ``stop()`` (idempotent; also waits for the server task to end).
public final class EngineHTTPServer: Sendable {
    /// The bind failure or start-up time-out of ``EngineHTTPServer/start(host:port:metrics:logger:)``.
    public struct StartError: Error, CustomStringConvertible {
        /// What went wrong, naming the address.
        public let description: String
    }

    /// The port actually bound (the configured one, or the kernel's choice for port 0).
    public let port: Int
    /// The host (address) bound.
    public let host: String
    private let task: Task<Void, Never>
    private let services: ServiceGroup
    private let executor: EventLoopTaskExecutor
    private let finished: DispatchSemaphore
    private let stopped = Mutex(false)

    /// Idle keep-alive connections are closed after this long.
    public static let idleTimeout = TimeAmount.seconds(30)

    private init(port: Int, host: String, task: Task<Void, Never>, services: ServiceGroup,
                 executor: EventLoopTaskExecutor, finished: DispatchSemaphore) {
        self.port = port
        self.host = host
        self.task = task
        self.services = services
        self.executor = executor
        self.finished = finished
    }

    /// The router of the three endpoints over `metrics` (and its ``EngineMetrics/health``).
    static func router(metrics: EngineMetrics) -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/metrics") { _, _ -> Response in
            let body = metrics.exposition()
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        router.get("/healthz") { _, _ -> Response in
            statusResponse(metrics.health.liveness())
        }
        router.get("/ready") { _, _ -> Response in
            statusResponse(metrics.health.readiness())
        }
        return router
    }

    static func statusResponse(_ s: EngineHealth.Status) -> Response {
        Response(status: s.ok ? .ok : .serviceUnavailable, headers: [.contentType: "text/plain; charset=utf-8"],
                 body: .init(byteBuffer: ByteBuffer(string: s.body)))
    }

    /// The first start-up outcome: the bound port, or why binding failed.
    private final class StartOutcome: Sendable {
        private let value = Mutex<Result<Int, StartError>?>(nil)
        func set(_ r: Result<Int, StartError>) {
            value.withLock { v in if case .none = v { v = r } }
        }
        func get() -> Result<Int, StartError>? { value.withLock { $0 } }
    }

    /// Binds `host:port` and serves until ``stop()``. Blocks the calling thread until the port
    /// is bound or binding failed (start-up runs on the server's own event loop, so this works
    /// from any thread).
    public static func start(host: String, port: Int, metrics: EngineMetrics, logger: Logger,
                             startTimeout: Duration = .seconds(10)) throws -> EngineHTTPServer {
        // NIO's singleton group lives as long as the process and is never shut down. A group of
        // our own would have to be shut down at stop(), and when the graceful shutdown outlives
        // its grace (a request in progress while Swift's global pool is busy) Hummingbird is
        // cancelled with its quiesce promise still pending: shutting the group down under that
        // promise makes NIO trap ("leaking promise") in debug builds. On a group that stays up,
        // the promise completes when the last connection closes (at the latest, idleTimeout).
        let group = MultiThreadedEventLoopGroup.singleton
        let bound = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)
        let outcome = StartOutcome()
        var quiet = logger
        quiet.logLevel = max(logger.logLevel, .notice)  // no per-request info lines
        let app = Application(
            router: router(metrics: metrics),
            server: .http1(configuration: .init(idleTimeout: idleTimeout)),
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in
                outcome.set(.success(channel.localAddress?.port ?? port))
                bound.signal()
            },
            eventLoopGroupProvider: .shared(group),
            logger: quiet)
        // The server's tasks (connections, handlers, the service group's actors) run on the
        // group's event loop thread, not on Swift's cooperative pool: a process whose pool
        // threads are blocked (the engine's blocking calls, a test's waits) still serves.
        let executor = EventLoopTaskExecutor(loop: group.next())
        // No signal handlers (the engine's own thread handles SIGTERM/SIGINT); stop() shuts
        // the group down gracefully: the listener closes, idle connections close, a request in
        // progress gets `shutdownGrace` to finish before it is cancelled.
        var configuration = ServiceGroupConfiguration(services: [app], gracefulShutdownSignals: [], logger: quiet)
        configuration.maximumGracefulShutdownDuration = shutdownGrace
        let services = ServiceGroup(configuration: configuration)
        let task = Task.detached(executorPreference: executor) {
            do {
                try await services.run()
            } catch is CancellationError {
            } catch {
                outcome.set(.failure(StartError(description: "metrics: cannot listen on \(host):\(port): \(error)")))
                bound.signal()
            }
            finished.signal()
        }
        let waited = bound.wait(timeout: .now() + .milliseconds(Int(startTimeout.components.seconds * 1000)))
        let result = outcome.get()
        switch (waited, result) {
        case (.success, .success(let actual)?):
            return EngineHTTPServer(port: actual, host: host, task: task, services: services, executor: executor,
                                    finished: finished)
        case (_, .failure(let e)?):
            shutDown(services: services, executor: executor, finished: finished)
            throw e
        default:
            shutDown(services: services, executor: executor, finished: finished)
            throw StartError(description: "metrics: \(host):\(port) not listening after \(startTimeout)")
        }
    }

    /// How long a request in progress may take to finish at stop() before it is cancelled.
    public static let shutdownGrace = Duration.seconds(3)

    /// Shuts the service group down gracefully and waits (at most 10 s) for it to end. The
    /// listener closes first, so nothing new is accepted while a connection is still being
    /// wound down. Serving never needs Swift's global executor, but shutting down
    /// does (Hummingbird's date cache, its shutdown task): in a process whose global pool
    /// threads are all blocked, stop() takes until one is free or the 10 s.
    private static func shutDown(services: ServiceGroup, executor: EventLoopTaskExecutor, finished: DispatchSemaphore) {
        Task.detached(executorPreference: executor) { await services.triggerGracefulShutdown() }
        _ = finished.wait(timeout: .now() + .seconds(10))
    }

    /// Stops serving: shuts the server down gracefully (the listener closes, open connections
    /// are closed once their request is answered) and waits for it to end, at most 10 s. Safe
    /// to call more than once.
    public func stop() {
        let first = stopped.withLock { s in defer { s = true }; return !s }
        guard first else { return }
        Self.shutDown(services: services, executor: executor, finished: finished)
    }
}

/// Runs Swift concurrency jobs on one NIO event loop: the server's task executor preference.
final class EventLoopTaskExecutor: TaskExecutor {
    let loop: any EventLoop

    init(loop: any EventLoop) { self.loop = loop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
