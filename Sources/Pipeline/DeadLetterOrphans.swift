import Foundation
import ObjectStore

/// Finds dead-letter objects that no delivered batch accounts for (docs/protocol.md, "Dead
/// letters"). A dead-letter object is PUT before its batch's `.parquet` object is created, so a
/// writer that then loses the race, or dies and whose range another writer delivers with other
/// cuts, leaves one behind: its rejected records would then be in two dead-letter objects.
///
/// The rule needs no manifest, only the store: the dead-letter object of `[s, e]` belongs to the
/// `.parquet` object at start `s` whose metadata says it ends at `e`. It is an **orphan** when
///   - the `.parquet` object at `s` ends elsewhere (another writer's batch won the start), or
///   - there is none at `s` but another object's range covers `s` (another writer delivered
///     the offsets with other cuts).
/// Both are final: the conditional create at `s` can never succeed for its batch. A dead-letter
/// object with neither is **pending** (its batch may still be in flight) and is left alone.
public struct DeadLetterOrphan: Sendable, Equatable, Codable {
    public var key: String
    public var topic: String
    public var partition: Int32
    public var startOffset: Int64
    public var endOffset: Int64
    /// Why no delivered batch accounts for it.
    public var reason: String
}

public enum DeadLetterOrphans {
    /// Parses `…/T+P+start+end.jsonl`.
    static func parse(_ key: String) -> (topic: String, partition: Int32, start: Int64, end: Int64)? {
        guard key.hasSuffix(".jsonl"), let name = key.split(separator: "/").last else { return nil }
        let fields = name.dropLast(".jsonl".count).split(separator: "+")
        guard fields.count == 4, let p = Int32(fields[1]), let s = Int64(fields[2]), let e = Int64(fields[3]) else { return nil }
        return (String(fields[0]), p, s, e)
    }

    /// The orphan rule itself (pure; `etl-audit --fleet` applies it to the chains it rebuilt):
    /// why the dead-letter object of `[start, end]` is an orphan, or nil when it is not (or not
    /// yet: pending).
    /// - Parameters:
    ///   - objectsAtStart: the `.parquet` objects starting at `start` (key and end; more than
    ///     one when `dt=` folders differ), the one to name first.
    ///   - before: the object with the largest start below `start`, if any.
    public static func orphanReason(start: Int64, end: Int64, objectsAtStart: [(key: String, end: Int64)],
                                    before: (key: String, start: Int64, end: Int64)?) -> String? {
        if let at = objectsAtStart.first {
            if objectsAtStart.contains(where: { $0.end == end }) { return nil }
            return "the object at start \(start) (\(at.key)) holds \(start)...\(at.end), not \(start)...\(end): its writer lost the race"
        }
        if let b = before, b.end >= start {
            return "offset \(start) is delivered by \(b.key) (\(b.start)...\(b.end)), cut differently"
        }
        return nil
    }

    /// Lists the dead-letter prefix and the topics' objects, and returns the orphans (one HEAD
    /// per dead-letter object, two when its start holds no object).
    /// - Parameter listed: the keys under the dead-letter prefix and the topics' prefixes, when the
    ///   caller has listed them already (`etl-audit`); nil lists them here.
    public static func find(store: any ObjectStore, layout: KeyLayout, listed: [String]? = nil) throws -> [DeadLetterOrphan] {
        let rejectedKeys = try listed?.filter { $0.hasPrefix(layout.rejectedPrefix) }
            ?? store.listAllObjects(prefix: layout.rejectedPrefix).map(\.key)
        let deadLetters = rejectedKeys.compactMap { key in parse(key).map { (key: key, parsed: $0) } }
        guard !deadLetters.isEmpty else { return [] }
        // Parquet objects per (topic, partition), by start offset.
        var starts: [String: [Int32: [Int64: String]]] = [:]
        // A path template whose first segment varies lists every topic under one prefix: list
        // each distinct prefix once.
        var listings: [String: [String]] = [:]
        for topic in Set(deadLetters.map(\.parsed.topic)) {
            let prefix = layout.topicPrefix(topic)
            if listings[prefix] == nil {
                listings[prefix] = try listed?.filter { $0.hasPrefix(prefix) } ?? store.listAllObjects(prefix: prefix).map(\.key)
            }
            for key in listings[prefix]! {
                guard let k = layout.parseObjectKey(key), k.topic == topic else { continue }
                starts[topic, default: [:]][k.partition, default: [:]][k.start] = key
            }
        }
        var ends: [String: Int64?] = [:]
        func end(of key: String) throws -> Int64? {
            if let known = ends[key] { return known }
            let e = try store.headObject(key: key)?.metadata[BatchMetadataKey.end].flatMap { Int64($0) }
            ends[key] = e
            return e
        }
        var orphans: [DeadLetterOrphan] = []
        for (key, d) in deadLetters {
            let objects = starts[d.topic]?[d.partition] ?? [:]
            var reason: String?
            if let at = objects[d.start] {
                if let e = try end(of: at) {
                    reason = orphanReason(start: d.start, end: d.end, objectsAtStart: [(at, e)], before: nil)
                }
            } else if let before = objects.keys.filter({ $0 < d.start }).max(), let key0 = objects[before],
                      let e = try end(of: key0) {
                reason = orphanReason(start: d.start, end: d.end, objectsAtStart: [], before: (key0, before, e))
            }
            if let reason {
                orphans.append(DeadLetterOrphan(key: key, topic: d.topic, partition: d.partition,
                                                startOffset: d.start, endOffset: d.end, reason: reason))
            }
        }
        return orphans.sorted { $0.key < $1.key }
    }
}
