/// Parsers for the duration and size values of the `etl-loggen` and `etl-produce` flags.
public enum CommandLineValues {
    /// `500ms`, `2s`, `1.5m`, `1h`, or plain seconds (`3`, `0.25`). nil for anything else.
    public static func duration(_ text: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        var number = Substring(text)
        var scale = 1.0
        for (suffix, s) in units where text.hasSuffix(suffix) {
            if suffix == "s" && text.hasSuffix("ms") { continue }
            number = text.dropLast(suffix.count)
            scale = s
            break
        }
        guard let v = Double(number), v >= 0, v.isFinite else { return nil }
        return .milliseconds(Int64((v * scale * 1000).rounded()))
    }

    /// `4MiB`, `512KiB`, `1GiB`, `10MB`, `1KB`, or plain bytes. nil for anything else.
    public static func bytes(_ text: String) -> Int? {
        let units: [(String, Int)] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30),
                                      ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let v = Double(text.dropLast(suffix.count)), v >= 0, v.isFinite else { return nil }
            return Int((v * Double(scale)).rounded())
        }
        return Int(text).flatMap { $0 >= 0 ? $0 : nil }
    }
}
