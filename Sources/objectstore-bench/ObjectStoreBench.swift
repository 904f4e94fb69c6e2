import Foundation
import ObjectStore

/// Uploads one file through `MultipartUploader` and prints the throughput; driven by
/// bench/objectstore_bench.sh.
///
///     objectstore-bench --location s3://bucket/prefix|file:///dir --file PATH
///                       [--endpoint URL] [--part-mib N] [--inflight N] [--create-bucket]
@main
struct ObjectStoreBench {
    static func main() {
        var options: [String: String] = [:]
        var flags: Set<String> = []
        var arguments = CommandLine.arguments.dropFirst().makeIterator()
        while let argument = arguments.next() {
            guard argument.hasPrefix("--") else { fail("unexpected argument \(argument)") }
            if argument == "--create-bucket" {
                flags.insert(argument)
            } else if let value = arguments.next() {
                options[argument] = value
            } else {
                fail("\(argument) needs a value")
            }
        }
        guard let locationText = options["--location"], let file = options["--file"] else {
            fail("usage: objectstore-bench --location URL --file PATH [--endpoint URL] [--part-mib N] [--inflight N]")
        }
        let partMiB = Int64(options["--part-mib"] ?? "16") ?? 16
        let inflight = Int(options["--inflight"] ?? "4") ?? 4
        do {
            let location = try ObjectStoreLocation(parsing: locationText)
            var configuration = S3Configuration(bucket: "", endpoint: options["--endpoint"])
            configuration.region = AWSRegion.resolve(explicit: nil, profile: nil).region
            let store = try makeObjectStore(location: location, s3: configuration)
            if flags.contains("--create-bucket"), let s3 = store as? S3Store { try s3.createBucket() }
            let uploader = MultipartUploader(store: store, partSize: Int(partMiB) << 20, concurrency: inflight)
            let key = location.prefix + "bench-\(partMiB)m-\(inflight)x-\(UUID().uuidString.prefix(8))"
            let size = (try FileManager.default.attributesOfItem(atPath: file)[.size] as? NSNumber)?.int64Value ?? 0
            let start = Date()
            _ = try uploader.upload(file: file, key: key, metadata: [:], onUploadCreated: { _ in },
                                    onPartUploaded: { _ in })
            let seconds = Date().timeIntervalSince(start)
            let mbps = Double(size) / 1_000_000 / seconds
            let label = locationText.hasPrefix("s3") ? "s3   ObjectStore" : "file ObjectStore"
            print(label + String(format: "  part=%3lldMiB inflight=%d bytes=%lld seconds=%6.2f MB/s=%7.1f", partMiB,
                                 inflight, size, seconds, mbps))
            try store.deleteObject(key: key)
        } catch {
            fail("\(error)")
        }
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        exit(1)
    }
}
