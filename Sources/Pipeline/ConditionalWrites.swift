import Foundation
import Logging
import ObjectStore
import TidemarkConfig

/// `[sink] conditional_writes`: whether the engine verifies at start that the object store
/// honours `If-None-Match: *` (the commit protocol's conditional create, docs/protocol.md).
extension Engine {
    /// Opens the sink's store. For S3 with `conditional_writes` `required` or `auto`, probes
    /// the store first (``conditionalWritesUsable(mode:store:key:logger:)``); with `auto` and
    /// a store that ignores the header, reopens it with
    /// ``S3Configuration/conditionalWrites`` off (HEAD before each commit).
    ///
    /// The store comes back wrapped in ``InstrumentedObjectStore``, and the probe already goes
    /// through the wrapper: its requests (two PutObject, one DeleteObject, the second put
    /// answered `alreadyExists`) are in `tidemark_s3_requests_total` like every other.
    static func openStore(config: EngineConfig, location: ObjectStoreLocation, layout: KeyLayout, metrics: EngineMetrics,
                          logger: Logger) throws -> InstrumentedObjectStore
    {
        var s3 = s3Configuration(config)
        let base = try makeObjectStore(location: location, s3: s3, logger: logger)
        let store = InstrumentedObjectStore(base: base, metrics: metrics)
        guard base is S3Store, config.sink.conditionalWrites != "off" else { return store }
        let usable = try conditionalWritesUsable(mode: config.sink.conditionalWrites, store: store,
                                                 key: conditionalWritesProbeKey(layout), logger: logger)
        guard !usable else { return store }
        s3.conditionalWrites = false
        return InstrumentedObjectStore(base: try makeObjectStore(location: location, s3: s3, logger: logger), metrics: metrics)
    }

    /// A fresh `<prefix>/_tidemark_check/conditional-<uuid>` key.
    static func conditionalWritesProbeKey(_ layout: KeyLayout) -> String {
        let name = "_tidemark_check/conditional-\(UUID().uuidString.lowercased())"
        return layout.prefix.isEmpty ? name : "\(layout.prefix)/\(name)"
    }

    /// Creates `key` twice with `If-None-Match: *`, then deletes it (best effort: a store may
    /// refuse DeleteObject).
    /// - Returns: true when the second create was refused (`alreadyExists`, S3 412).
    /// - Throws: ``ObjectStoreError`` when the store fails either create for another reason.
    public static func probeConditionalWrites(store: any ObjectStore, key: String) throws -> Bool {
        defer { try? store.deleteObject(key: key) }
        _ = try store.putObject(key: key, data: .bytes(Array("tidemark conditional-write probe 1".utf8)), metadata: [:],
                                ifNoneMatch: true)
        do {
            _ = try store.putObject(key: key, data: .bytes(Array("tidemark conditional-write probe 2".utf8)),
                                    metadata: [:], ifNoneMatch: true)
        } catch let error as ObjectStoreError where error.kind == .alreadyExists {
            return true
        }
        return false
    }

    /// Applies `mode` (`required`, `auto`, `off`) to the probe's outcome.
    /// - Returns: whether the engine may rely on conditional writes: true when they are
    ///   honoured, when the mode is `off`, or when the probe could not run (a warning is logged;
    ///   the first upload then meets the same store error); false with `auto` when the store
    ///   ignores `If-None-Match` (a warning is logged).
    /// - Throws: ``ConfigError`` (`sink.conditional_writes`) with `required` when the store
    ///   ignores `If-None-Match`.
    public static func conditionalWritesUsable(mode: String, store: any ObjectStore, key: String, logger: Logger) throws
        -> Bool
    {
        guard mode != "off" else { return true }
        let honoured: Bool
        do {
            honoured = try probeConditionalWrites(store: store, key: key)
        } catch let error as ObjectStoreError {
            logger.warning("conditional-write probe could not run; continuing", metadata: [
                "error": "\(error)", "probe.key": "\(key)",
            ])
            return true
        }
        if honoured {
            logger.info("object store honours If-None-Match: * (conditional-write probe)", metadata: ["probe.key": "\(key)"])
            return true
        }
        if mode == "auto" {
            logger.warning("""
                the object store ignores If-None-Match: * on PutObject (a second conditional create of \(key) \
                succeeded); [sink] conditional_writes = "auto": falling back to HEAD before each commit, which \
                leaves a race window a zombie writer could use
                """)
            return false
        }
        throw ConfigError(key: "sink.conditional_writes", message: """
            the object store ignores If-None-Match: * on PutObject (a second conditional create of \(key) \
            succeeded), and the commit protocol relies on it. Use a store that honours it (AWS S3, MinIO, \
            recent Ceph RGW) or set [sink] conditional_writes = "auto" to fall back to HEAD before each commit
            """)
    }
}
