import ArgumentParser
import FileProducer
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `etl-loggen`: appends synthetic log lines to a file (a thin shell over
/// `FileProducer.LogLineGenerator` and `LogFileWriter`).
@main
struct LogGenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "etl-loggen",
        abstract: "Append synthetic application log lines to a file, deterministically for a seed.",
        discussion: """
            Each line is '<serial> <ISO-8601 UTC time with ms> <LEVEL> <message>', e.g.
              1042 2026-11-26T00:00:07.294Z INFO order=4711 cache retry worker ...
            Levels: ~70% INFO, 15% DEBUG, 10% WARN, 5% ERROR; messages are 60-120 bytes. Serials \
            count up from --start-serial; the timestamp of serial N is 2026-11-26T00:00:00Z + 7 ms * N \
            (or the wall clock with --wall-clock), so the same --seed and options give the same bytes.

            --bad-fraction mixes in malformed lines (truncated, bad timestamp, binary garbage, \
            empty, invalid UTF-8) for the engine's dead-letter path. --rotate-bytes rotates like \
            logrotate: app.log -> app.log.1 (older ones shift to .2, .3 ...; at most --keep are kept), \
            then a new app.log.

            Without --lines or --duration it runs until SIGTERM/SIGINT. On exit it prints a JSON \
            summary: {"lines":N,"bad":M,"rotations":R,"next_serial":S}.

            Examples:
              etl-loggen --out /tmp/app.log --lines 100000
              etl-loggen --out /tmp/app.log --duration 30s --rate 2000 \\
                  --rotate-bytes 4MiB
              etl-loggen --out /tmp/app.log --lines 5000 --seed 7 \\
                  --bad-fraction 0.02 --start-serial 100000

            Exit codes: 0 done (or stopped by SIGTERM/SIGINT); 1 write or rotation failed (the \
            message names the file); 64 invalid command line.
            """
    )

    @Option(help: ArgumentHelp("The log file to append to (created if missing).", valueName: "path"))
    var out: String

    @Option(help: ArgumentHelp("Write this many lines, then exit.", valueName: "N"))
    var lines: Int?

    @Option(help: ArgumentHelp("Write for this long (e.g. 30s, 2m), then exit.", valueName: "duration"))
    var duration: String?

    @Option(help: ArgumentHelp("Lines per second (default: as fast as possible).", valueName: "lines-per-s"))
    var rate: Double?

    @Option(help: ArgumentHelp("Generator seed; equal seeds and options give equal output.", valueName: "S"))
    var seed: UInt64 = 1

    @Option(help: ArgumentHelp("Fraction of malformed lines, 0...1.", valueName: "F"))
    var badFraction: Double = 0

    @Option(help: ArgumentHelp("Serial of the first line (continue an earlier run's serials).", valueName: "N"))
    var startSerial: Int64 = 0

    @Option(help: ArgumentHelp("Rotate before the file would pass this size (e.g. 4MiB, 1000000).", valueName: "size"))
    var rotateBytes: String?

    @Option(help: ArgumentHelp("Rotated files kept (app.log.1 ... app.log.K).", valueName: "K"))
    var keep: Int = 5

    @Flag(help: "Stamp lines with the current time instead of the synthetic clock (output is then not reproducible).")
    var wallClock = false

    func validate() throws {
        if lines != nil && duration != nil { throw ValidationError("give --lines or --duration, not both") }
        if let lines, lines < 0 { throw ValidationError("--lines must not be negative") }
        if let duration, CommandLineValues.duration(duration) == nil {
            throw ValidationError("--duration '\(duration)' is not a duration (e.g. 30s, 500ms, 2m)")
        }
        if let rate, !(rate > 0) { throw ValidationError("--rate must be positive") }
        if !(0...1).contains(badFraction) { throw ValidationError("--bad-fraction must be within 0...1") }
        if let rotateBytes, (CommandLineValues.bytes(rotateBytes) ?? 0) <= 0 {
            throw ValidationError("--rotate-bytes '\(rotateBytes)' is not a positive size (e.g. 4MiB)")
        }
        if keep < 1 { throw ValidationError("--keep must be at least 1") }
    }

    func run() throws {
        let stop = StopFlag.onShutdownSignals()

        var generator = LogLineGenerator(seed: seed, startSerial: startSerial, badFraction: badFraction)
        let writer: LogFileWriter
        do {
            writer = try LogFileWriter(path: out, rotateBytes: rotateBytes.flatMap(CommandLineValues.bytes).map(UInt64.init),
                                       keep: keep)
        } catch {
            FileHandle.standardError.write(Data("etl-loggen: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let start = ContinuousClock.now
        let deadline = duration.flatMap(CommandLineValues.duration).map { start.advanced(by: $0) }
        var written = 0
        while !stop.isRequested {
            let now = ContinuousClock.now
            if let deadline, now >= deadline { break }
            if let lines, written >= lines { break }
            var due = 1000
            if let rate {
                let elapsed = start.duration(to: now)
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
                due = min(Int(seconds * rate) - written, 10_000)
            }
            if let lines { due = min(due, lines - written) }
            if due <= 0 {
                usleep(5_000)
                continue
            }
            let millis: Int64? = wallClock ? Int64(Date().timeIntervalSince1970 * 1000) : nil
            let batch = (0..<due).map { _ in generator.nextLine(nowMillis: millis) }
            do {
                try writer.append(batch)
            } catch {
                FileHandle.standardError.write(Data("etl-loggen: \(error)\n".utf8))
                throw ExitCode(1)
            }
            written += due
            if rate != nil { usleep(10_000) }
        }
        writer.close()
        print("{\"lines\":\(written),\"bad\":\(generator.badCount),\"rotations\":\(writer.rotations),\"next_serial\":\(generator.nextSerial)}")
    }
}
