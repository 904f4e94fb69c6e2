import ArgumentParser
import Foundation
import KafkaMock

#if canImport(Glibc)
import Glibc
#endif

/// `etl-devbroker`: a development Kafka broker on 127.0.0.1, backed by librdkafka's mock cluster.
@main
struct DevBroker: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "etl-devbroker",
        abstract: "Run a development Kafka broker on 127.0.0.1 (librdkafka's mock cluster).",
        discussion: """
            The broker speaks the real Kafka protocol: producers (including idempotent ones), \
            consumer groups and offset commits work with any Kafka client. It keeps all data in \
            memory and forgets it on exit. It is for tests, demos and development only; production \
            runs against a real Kafka cluster.

            The listener port is chosen by librdkafka (an ephemeral port on 127.0.0.1); read it from \
            --bootstrap-file once that file exists. Topics must be declared with --topic because the \
            mock cluster does not implement CreateTopics; unknown topics are also auto-created with \
            the mock's default partition count when a client asks for their metadata.

            Fault injection (tests only): with --control PATH the broker listens on a Unix-domain \
            socket at PATH (mode 0600) for a line protocol, one command per line, each answered \
            with one line, "ok" or "error <text>":
              ping
              broker-down ID                 take mock broker ID (1..--brokers) down
              broker-up ID                   bring it back
              rtt ID MS                      add MS milliseconds of round-trip time to broker ID
              push-errors API ERROR COUNT    the next COUNT requests of API fail with ERROR
              clear-errors API               forget pushed errors of API
            API is a request name (Produce, Fetch, ListOffsets, Metadata, OffsetCommit, \
            OffsetFetch, FindCoordinator, JoinGroup, Heartbeat, LeaveGroup, SyncGroup, \
            InitProducerId) or its API key; ERROR is a Kafka error name (REBALANCE_IN_PROGRESS, \
            NOT_COORDINATOR, REQUEST_TIMED_OUT, ...) or code. For example:
              tools/devbroker_ctl.py .stack/kafka.control 'push-errors OffsetCommit REBALANCE_IN_PROGRESS 3'

            Runs until SIGTERM or SIGINT, then exits 0.

            Example:
              etl-devbroker --topic logs:4 --topic other:1 --bootstrap-file .stack/kafka.bootstrap
            """
    )

    @Option(name: .customLong("topic"), help: ArgumentHelp(
        "A topic to create, as NAME:PARTITIONS (repeatable).", valueName: "name:partitions"))
    var topics: [String] = []

    @Option(help: "Number of mock brokers.")
    var brokers: Int = 1

    @Option(help: "Write the bootstrap address (host:port,...) to this file once the broker is ready.")
    var bootstrapFile: String?

    @Option(help: ArgumentHelp(
        "Serve the fault-injection line protocol (see below) on a Unix socket at this path.", valueName: "path"))
    var control: String?

    func validate() throws {
        guard brokers >= 1 && brokers <= 16 else { throw ValidationError("--brokers must be between 1 and 16") }
        for spec in topics { _ = try Self.parseTopic(spec) }
    }

    static func parseTopic(_ spec: String) throws -> (String, Int) {
        let parts = spec.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, let n = Int(parts[1]), n >= 1, n <= 10_000 else {
            throw ValidationError("--topic '\(spec)': expected NAME:PARTITIONS, e.g. logs:4")
        }
        return (String(parts[0]), n)
    }

    func run() throws {
        // Block the shutdown signals before any thread starts so that sigwait below receives them.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        pthread_sigmask(SIG_BLOCK, &set, nil)

        let cluster = try MockCluster(brokers: brokers)
        for spec in topics {
            let (name, partitions) = try Self.parseTopic(spec)
            try cluster.createTopic(name, partitions: partitions)
        }
        var controlServer: MockControlServer?
        if let path = control {
            controlServer = try MockControlServer(path: path) { [cluster] line in
                let answer = cluster.handleControlLine(line)
                print("etl-devbroker: control: \(line) -> \(answer)")
                fflush(nil)
                return answer
            }
        }
        let bootstrap = cluster.bootstrapServers
        if let path = bootstrapFile {
            // Write then rename so a reader never sees a half-written address.
            let tmp = path + ".tmp"
            try (bootstrap + "\n").write(toFile: tmp, atomically: false, encoding: .utf8)
            guard rename(tmp, path) == 0 else {
                throw ValidationError("cannot write --bootstrap-file \(path): \(String(cString: strerror(errno)))")
            }
        }
        print("etl-devbroker: listening on \(bootstrap) (pid \(getpid()))")
        fflush(nil)  // flush all C streams (stdout is not concurrency-safe to name in Swift 6)

        var sig: Int32 = 0
        sigwait(&set, &sig)
        print("etl-devbroker: signal \(sig), shutting down")
        controlServer?.close()
        cluster.close()
        if let path = bootstrapFile { unlink(path) }
    }
}
