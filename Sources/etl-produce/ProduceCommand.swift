import ArgumentParser
import FileProducer
import Foundation
import Logging
import TidemarkLogging

#if canImport(Glibc)
import Glibc
#endif

/// `etl-produce`: follows a log file into Kafka exactly once (a thin shell over
/// `FileProducer.FileProducer`).
@main
struct ProduceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "etl-produce",
        abstract: "Follow an append-only log file (like tail -F) and send each line to Kafka exactly once.",
        discussion: """
            Every complete line is sent without its newline (a trailing partial line waits for its \
            newline) with an idempotent producer (enable.idempotence=true, acks=all; \
            compression.type=zstd unless --property says otherwise). Rotation by rename (numbered \
            app.log -> app.log.1, or dated app.log -> app.log-20261126; other names with \
            --rotated-glob), copytruncate (the copy's unread rest is read first) and truncation are \
            followed. Each record carries the headers tidemark.file (file fingerprint), \
            tidemark.fileid (the producer's identity of the file, unique even for files with equal \
            bytes), tidemark.offset, tidemark.end (byte range) and tidemark.line.

            The first start (no checkpoint in --state) begins at the oldest rotated sibling and \
            reads every newer one, then app.log (--start-from oldest, the default), or at offset 0 \
            of app.log only (--start-from current).

            Progress is kept in --state DIR (checkpoint.json: file identity, device+inode, \
            fingerprint, byte offset, line number, hash of the bytes before the offset; written atomically, only after Kafka acknowledged every line up to \
            it). On start, before sending anything, the last records of each target partition are \
            read, and a line of the checkpointed file is sent only if its end offset is beyond both \
            the checkpoint and the newest record with that file's identity in its partition. So a crash (even kill -9) between \
            sending and checkpointing duplicates nothing. See docs/producer.md.

            Lines longer than --max-line-bytes are not sent: they are counted, logged with file and \
            byte offset, and listed in DIR/skipped.jsonl. Binary or invalid UTF-8 lines are sent as \
            they are (the engine dead-letters them). A missing file is waited for.

            Logs go to stderr: --log-format text (default) or json (one JSON object per line: ts, \
            level, logger, msg, source and every metadata key); with json the final failure \
            message is a JSON line too.

            SIGTERM/SIGINT: flush, checkpoint, exit 0 (a second signal exits at once; safe, the \
            next start resumes by the same rule). On exit a JSON summary is printed to stdout.

            Examples:
              # follow for ever, all lines to partition 0
              etl-produce --file /var/log/app.log --topic logs \\
                  --brokers kafka:9092 --state /var/lib/etl-produce
              # key by serial over all partitions; exit at the end of the file
              etl-produce --file app.log --topic logs --brokers kafka:9092 \\
                  --key serial --state ./state --exit-at-eof
              # partition 2; exit after 5 s without a new line
              etl-produce --file app.log --topic logs --brokers kafka:9092 \\
                  --partition 2 --state ./state --until-idle 5s
              # rotated files named app-2026-11-26.log (dates sort by age);
              # a first start reads app.log only
              etl-produce --file app.log --topic logs --brokers kafka:9092 \\
                  --state ./state --rotated-glob 'app-*.log' --start-from current

            Exit codes: 0 stopped by a signal, or --exit-at-eof / --until-idle reached; 1 runtime \
            failure (Kafka unreachable or delivery/flush failed, read error; a restart resumes \
            exactly); 2 cannot start without a fix (permission denied on the file or state \
            directory, corrupt checkpoint, state directory in use, partition out of range), the \
            message names the path or option; 64 invalid command line; 130 a second \
            SIGTERM/SIGINT (exited at once).
            """
    )

    @Option(help: ArgumentHelp("The log file to follow (waited for if missing).", valueName: "path"))
    var file: String

    @Option(help: ArgumentHelp("The Kafka topic.", valueName: "name"))
    var topic: String

    @Option(help: ArgumentHelp("Bootstrap servers, host:port[,host:port...].", valueName: "list"))
    var brokers: String

    @Option(help: ArgumentHelp("State directory (checkpoint.json, skipped.jsonl, lock); one producer per directory.",
                               valueName: "dir"))
    var state: String

    @Option(help: ArgumentHelp("Send every line to this partition (default 0 unless --key serial).", valueName: "P"))
    var partition: Int32?

    @Option(help: ArgumentHelp(
        "'serial': key each record by the line's first word and pick the partition with Kafka's murmur2 partitioner.",
        valueName: "serial"))
    var key: String?

    @Option(help: ArgumentHelp("Longest line sent; longer lines are skipped and listed (e.g. 1MiB).", valueName: "size"))
    var maxLineBytes: String = "1MiB"

    @Option(help: ArgumentHelp("Flush and checkpoint after this many lines...", valueName: "N"))
    var checkpointLines: Int = 10_000

    @Option(help: ArgumentHelp("...or this long after the first unsaved line (e.g. 1s, 250ms).", valueName: "duration"))
    var checkpointInterval: String = "1s"

    @Option(help: ArgumentHelp("How often to look for new data at the end of the file.", valueName: "duration"))
    var pollInterval: String = "50ms"

    @Flag(help: "Exit 0 at the end of the file (after finishing rotated files); a partial last line stays unsent.")
    var exitAtEof = false

    @Option(help: ArgumentHelp("Exit 0 once no new line arrived for this long (e.g. 5s).", valueName: "duration"))
    var untilIdle: String?

    @Option(help: ArgumentHelp(
        "Without a checkpoint: 'oldest' reads the rotated siblings oldest first, then the file; 'current' starts at offset 0 of the file.",
        valueName: "oldest|current"))
    var startFrom: String = "oldest"

    @Option(name: .customLong("rotated-glob"), help: ArgumentHelp(
        "fnmatch pattern for rotated siblings' names in the file's directory (repeatable; default: FILE.N and FILE-DATE / FILE.DATE forms). Siblings are read oldest first: FILE.N by N descending, others in byte order of the name, before FILE.N.",
        valueName: "glob"))
    var rotatedGlobs: [String] = []

    @Option(name: .customLong("property"), help: ArgumentHelp(
        "A librdkafka producer property, key=value (repeatable), e.g. compression.type=lz4, security.protocol=ssl.",
        valueName: "key=value"))
    var properties: [String] = []

    @Option(help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error.", valueName: "level"))
    var logLevel: String = "info"

    @Option(help: ArgumentHelp(
        "Log format on stderr: 'text' (default) or 'json' (one JSON object per line: ts, level, logger, msg, source, metadata).",
        valueName: "text|json"))
    var logFormat: String = "text"

    func validate() throws {
        if partition != nil && key != nil { throw ValidationError("give --partition or --key serial, not both") }
        if let key, key != "serial" { throw ValidationError("--key supports only 'serial'") }
        if let partition, partition < 0 { throw ValidationError("--partition must not be negative") }
        if (CommandLineValues.bytes(maxLineBytes) ?? 0) <= 0 {
            throw ValidationError("--max-line-bytes '\(maxLineBytes)' is not a positive size")
        }
        if checkpointLines < 1 { throw ValidationError("--checkpoint-lines must be at least 1") }
        for (name, value) in [("--checkpoint-interval", checkpointInterval), ("--poll-interval", pollInterval),
                              ("--until-idle", untilIdle ?? "0")] where CommandLineValues.duration(value) == nil {
            throw ValidationError("\(name) '\(value)' is not a duration (e.g. 500ms, 2s)")
        }
        if exitAtEof && untilIdle != nil { throw ValidationError("give --exit-at-eof or --until-idle, not both") }
        for p in properties where !p.contains("=") { throw ValidationError("--property '\(p)' is not key=value") }
        if StartFrom(rawValue: startFrom) == nil { throw ValidationError("--start-from must be 'oldest' or 'current'") }
        for g in rotatedGlobs where g.isEmpty || g.contains("/") {
            throw ValidationError("--rotated-glob '\(g)' must be a non-empty name pattern without '/'")
        }
        if Logger.Level(rawValue: logLevel) == nil { throw ValidationError("--log-level '\(logLevel)' is unknown") }
        if LogFormat(rawValue: logFormat) == nil { throw ValidationError("--log-format must be 'text' or 'json'") }
    }

    func run() throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        let format = LogFormat(rawValue: logFormat) ?? .text
        LoggingSystem.bootstrap { label in format.makeHandler(label: label, level: level) }
        let logger = Logger(label: "tidemark.produce")

        var options = FileProducerOptions(file: file, topic: topic, brokers: brokers, stateDirectory: state)
        options.partitioning = key == "serial" ? .keySerial : .fixed(partition ?? 0)
        options.maxLineBytes = CommandLineValues.bytes(maxLineBytes)!
        options.checkpointLines = checkpointLines
        options.checkpointInterval = CommandLineValues.duration(checkpointInterval)!
        options.pollInterval = CommandLineValues.duration(pollInterval)!
        options.startFrom = StartFrom(rawValue: startFrom) ?? .oldest
        options.rotatedGlobs = rotatedGlobs
        if exitAtEof { options.exitMode = .atEOF }
        if let untilIdle { options.exitMode = .idle(CommandLineValues.duration(untilIdle)!) }
        for p in properties {
            let parts = p.split(separator: "=", maxSplits: 1)
            options.kafkaProperties[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }

        // Block the shutdown signals in every thread; a dedicated thread receives them.
        let stop = StopFlag.onShutdownSignals(
            onFirst: { sig in logger.notice("signal \(sig): flushing and checkpointing (send it again to exit at once)") },
            secondSignalMessage: "etl-produce: second signal, exiting now")

        do {
            let producer = try FileProducer(options: options, logger: logger)
            let summary = try producer.run(stop: stop)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            if let data = try? encoder.encode(summary) { print(String(decoding: data, as: UTF8.self)) }
        } catch {
            // `error` is a FileProducerError (typed throws).
            if format == .json {
                logger.critical("\(error)")
            } else {
                FileHandle.standardError.write(Data("etl-produce: \(error)\n".utf8))
            }
            throw ExitCode(error.isStartupError ? 2 : 1)
        }
    }
}
