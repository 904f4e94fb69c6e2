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
        cluster.close()
        if let path = bootstrapFile { unlink(path) }
    }
}
