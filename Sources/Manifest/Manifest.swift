import Foundation
import GRDB

#if canImport(Glibc)
import Glibc
#endif

/// The write-ahead manifest: a SQLite database (through GRDB) in WAL mode with
/// `synchronous=FULL`, so a committed transaction survives a power cut.
///
/// One process at a time: ``open(path:)`` takes an exclusive `flock` on `<path>.lock` (holding
/// the owner's PID) and fails fast with ``ManifestError/locked(path:holderPID:)`` otherwise.
/// The database and lock file are created 0600 in a directory created 0700.
///
/// Thread safety: every method may be called from any thread; GRDB serialises writes.
public final class Manifest: @unchecked Sendable {
    // @unchecked Sendable: `pool` is a thread-safe GRDB DatabasePool; `lockFD` is written only
    // in init and close(), which the owner calls once when no other call is in flight.
    private let pool: DatabasePool
    private var lockFD: Int32
    /// The database file.
    public let path: String

    /// Opens (creating if needed) the manifest at `path`: lock, migrate, `PRAGMA quick_check`.
    ///
    /// - Throws: ``ManifestError`` naming the path: locked by another process (with its PID),
    ///   corrupt, or not creatable (e.g. a read-only directory).
    public static func open(path: String) throws -> Manifest {
        try Manifest(path: path)
    }

    /// Opens an existing manifest for reading only, without the exclusive lock, so that
    /// `etl-audit` can run beside a live engine (SQLite WAL readers see the last committed
    /// transaction). Writes through the returned object fail.
    public static func openReadOnly(path: String) throws -> Manifest {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ManifestError.cannotOpen(path: path, reason: "no such file")
        }
        var config = Configuration()
        config.readonly = true
        config.busyMode = .timeout(10)
        do {
            let pool = try DatabasePool(path: path, configuration: config)
            return Manifest(pool: pool, path: path)
        } catch {
            throw ManifestError.cannotOpen(path: path, reason: "\(error)")
        }
    }

    private init(pool: DatabasePool, path: String) {
        self.pool = pool
        self.path = path
        self.lockFD = -1
    }

    private init(path: String) throws {
        self.path = path
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty && !FileManager.default.fileExists(atPath: dir) {
            do {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            } catch {
                throw ManifestError.cannotOpen(path: path, reason: "cannot create directory \(dir): \(error.localizedDescription)")
            }
        }
        lockFD = try Self.acquireLock(path: path + ".lock", manifest: path)
        do {
            // Create the file 0600 before SQLite does (SQLite would use the umask).
            let fd = Glibc.open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                throw ManifestError.cannotOpen(path: path, reason: String(cString: strerror(errno)))
            }
            Glibc.close(fd)
            var config = Configuration()
            config.busyMode = .timeout(10)
            config.prepareDatabase { db in
                try db.execute(sql: "PRAGMA synchronous = FULL")
                try db.execute(sql: "PRAGMA foreign_keys = ON")
            }
            do {
                pool = try DatabasePool(path: path, configuration: config)
            } catch {
                throw ManifestError.cannotOpen(path: path, reason: "\(error)")
            }
            let check = try Self.wrap(path) { try pool.read { db in try String.fetchAll(db, sql: "PRAGMA quick_check") } }
            guard check == ["ok"] else {
                throw ManifestError.corrupt(path: path, detail: check.prefix(5).joined(separator: "; "))
            }
            try Self.wrap(path) { try Self.migrator.migrate(pool) }
        } catch {
            Glibc.close(lockFD)
            throw error
        }
    }

    deinit {
        if lockFD >= 0 { Glibc.close(lockFD) }
    }

    /// Releases the lock. The manifest must not be used afterwards.
    public func close() {
        try? pool.close()
        if lockFD >= 0 { Glibc.close(lockFD) }
        lockFD = -1
    }

    // MARK: Locking

    private static func acquireLock(path: String, manifest: String) throws -> Int32 {
        let fd = Glibc.open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw ManifestError.cannotOpen(path: manifest, reason: "lock file \(path): \(String(cString: strerror(errno)))")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))
                .flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            Glibc.close(fd)
            throw ManifestError.locked(path: manifest, holderPID: holder)
        }
        let pid = "\(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = pid.withCString { pwrite(fd, $0, strlen($0), 0) }
        return fd
    }

    /// The PID written in the lock file of the manifest at `path` when a live process holds it,
    /// else nil. Does not take the lock.
    public static func lockHolder(path: String) -> Int32? {
        let lock = path + ".lock"
        let fd = Glibc.open(lock, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) == 0 {
            flock(fd, LOCK_UN)
            return nil
        }
        return (try? String(contentsOfFile: lock, encoding: .utf8))
            .flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    // MARK: Schema (migrations as code)

    private static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1: batches, parts, events") { db in
            try db.execute(sql: """
                CREATE TABLE batches (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    topic TEXT NOT NULL,
                    partition INTEGER NOT NULL,
                    start_offset INTEGER NOT NULL,
                    end_offset INTEGER NOT NULL CHECK (end_offset >= start_offset),
                    good_count INTEGER NOT NULL,
                    rejected_count INTEGER NOT NULL,
                    object_key TEXT NOT NULL,
                    rejected_key TEXT,
                    file_path TEXT NOT NULL,
                    file_sha256 TEXT NOT NULL,
                    file_size INTEGER NOT NULL,
                    rejected_path TEXT,
                    rejected_sha256 TEXT,
                    rejected_size INTEGER,
                    state TEXT NOT NULL CHECK (state IN ('STAGED','UPLOADING','UPLOADED','COMMITTED','ABANDONED','SUPERSEDED')),
                    upload_id TEXT,
                    etag TEXT,
                    note TEXT,
                    created_at REAL NOT NULL,
                    updated_at REAL NOT NULL,
                    CHECK (good_count + rejected_count = end_offset - start_offset + 1)
                );
                CREATE INDEX batches_by_partition ON batches (topic, partition, start_offset);
                CREATE INDEX batches_by_state ON batches (state);
                CREATE TABLE parts (
                    batch_id INTEGER NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
                    upload_id TEXT NOT NULL,
                    part_number INTEGER NOT NULL,
                    size INTEGER NOT NULL,
                    checksum TEXT,
                    etag TEXT NOT NULL,
                    PRIMARY KEY (batch_id, upload_id, part_number)
                );
                CREATE TABLE events (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    at REAL NOT NULL,
                    batch_id INTEGER,
                    kind TEXT NOT NULL,
                    detail TEXT NOT NULL
                );
                """)
        }
        // Offsets are not dense: transaction markers (commit/abort) and compaction leave offsets
        // that hold no record, and a batch covers [chain position, last record]. SQLite cannot
        // change a CHECK constraint in place, so the table is rebuilt (GRDB runs migrations with
        // foreign keys off, so `parts` keeps its rows).
        m.registerMigration("v2: a batch's range may hold offsets without records") { db in
            try db.execute(sql: """
                CREATE TABLE batches_v2 (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    topic TEXT NOT NULL,
                    partition INTEGER NOT NULL,
                    start_offset INTEGER NOT NULL,
                    end_offset INTEGER NOT NULL CHECK (end_offset >= start_offset),
                    good_count INTEGER NOT NULL CHECK (good_count >= 0),
                    rejected_count INTEGER NOT NULL CHECK (rejected_count >= 0),
                    object_key TEXT NOT NULL,
                    rejected_key TEXT,
                    file_path TEXT NOT NULL,
                    file_sha256 TEXT NOT NULL,
                    file_size INTEGER NOT NULL,
                    rejected_path TEXT,
                    rejected_sha256 TEXT,
                    rejected_size INTEGER,
                    state TEXT NOT NULL CHECK (state IN ('STAGED','UPLOADING','UPLOADED','COMMITTED','ABANDONED','SUPERSEDED')),
                    upload_id TEXT,
                    etag TEXT,
                    note TEXT,
                    created_at REAL NOT NULL,
                    updated_at REAL NOT NULL,
                    CHECK (good_count + rejected_count <= end_offset - start_offset + 1)
                );
                INSERT INTO batches_v2 SELECT * FROM batches;
                DROP TABLE batches;
                ALTER TABLE batches_v2 RENAME TO batches;
                CREATE INDEX batches_by_partition ON batches (topic, partition, start_offset);
                CREATE INDEX batches_by_state ON batches (state);
                """)
        }
        // Records deleted by retention before they were delivered (issue 19): the engine records
        // each lost range once, etl-audit reports them.
        m.registerMigration("v3: ranges lost to retention") { db in
            try db.execute(sql: """
                CREATE TABLE losses (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    topic TEXT NOT NULL,
                    partition INTEGER NOT NULL,
                    start_offset INTEGER NOT NULL,
                    end_offset INTEGER NOT NULL CHECK (end_offset >= start_offset),
                    detected_at REAL NOT NULL,
                    detail TEXT NOT NULL,
                    UNIQUE (topic, partition, start_offset, end_offset)
                );
                """)
        }
        // The output schemas (issue 20): every schema the engine wrote objects with, by
        // fingerprint; the one with the latest last_used is the current one, which the engine
        // compares its configuration with at start (the schema change rule, docs/operations.md).
        m.registerMigration("v4: output schemas") { db in
            try db.execute(sql: """
                CREATE TABLE schemas (
                    fingerprint TEXT PRIMARY KEY,
                    json TEXT NOT NULL,
                    first_seen REAL NOT NULL,
                    last_used REAL NOT NULL
                );
                """)
        }
        // Manifest retention (docs/protocol.md): per partition, how far final rows were pruned.
        // Offsets at or below pruned_through are before the manifest horizon: the lake, not the
        // manifest, describes them.
        m.registerMigration("v5: pruning horizons") { db in
            try db.execute(sql: """
                CREATE TABLE horizons (
                    topic TEXT NOT NULL,
                    partition INTEGER NOT NULL,
                    pruned_through INTEGER NOT NULL,
                    delivered_through INTEGER,
                    pruned_batches INTEGER NOT NULL,
                    updated_at REAL NOT NULL,
                    PRIMARY KEY (topic, partition)
                );
                """)
        }
        return m
    }

    // MARK: Schemas

    /// Records `json` (fingerprint `fingerprint`) as the current output schema: inserted when
    /// new (first_seen = now), else its last_used moves to now.
    public func recordSchema(fingerprint: String, json: String) throws {
        try wrap {
            try pool.write { db in
                let now = Date().timeIntervalSince1970
                // last_used never goes backwards, so a clock step cannot make an older schema current.
                let latest = try Double.fetchOne(db, sql: "SELECT max(last_used) FROM schemas") ?? 0
                let used = max(now, latest + 0.000001)
                try db.execute(sql: """
                    INSERT INTO schemas (fingerprint, json, first_seen, last_used) VALUES (?,?,?,?)
                    ON CONFLICT(fingerprint) DO UPDATE SET last_used = excluded.last_used
                    """, arguments: [fingerprint, json, now, used])
                if db.changesCount > 0 {
                    try Self.appendEvent(db, batchID: nil, kind: "SCHEMA", detail: "current schema \(fingerprint)")
                }
            }
        }
    }

    /// The current output schema (the one recorded last), nil before the first.
    public func currentSchema() throws -> SchemaRecord? {
        try wrap {
            try pool.read { db in
                try Row.fetchOne(db, sql: "SELECT * FROM schemas ORDER BY last_used DESC LIMIT 1").map(Self.schema(from:))
            }
        }
    }

    /// The schema recorded under `fingerprint`, if any.
    public func schema(fingerprint: String) throws -> SchemaRecord? {
        try wrap {
            try pool.read { db in
                try Row.fetchOne(db, sql: "SELECT * FROM schemas WHERE fingerprint = ?", arguments: [fingerprint]).map(Self.schema(from:))
            }
        }
    }

    /// Every recorded schema, oldest first.
    public func schemas() throws -> [SchemaRecord] {
        try wrap {
            try pool.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM schemas ORDER BY first_seen, last_used").map(Self.schema(from:))
            }
        }
    }

    private static func schema(from row: Row) -> SchemaRecord {
        SchemaRecord(fingerprint: row["fingerprint"], json: row["json"],
                     firstSeen: Date(timeIntervalSince1970: row["first_seen"]), lastUsed: Date(timeIntervalSince1970: row["last_used"]))
    }

    // MARK: Writes

    /// Records a freshly staged batch (state STAGED) and returns its id. Refuses a range that
    /// overlaps a live (not ABANDONED/SUPERSEDED) batch of the same partition.
    @discardableResult
    public func insertStaged(_ b: NewBatch) throws -> Int64 {
        try wrap {
            try pool.write { db in
                if let existing = try Int64.fetchOne(db, sql: """
                    SELECT id FROM batches WHERE topic = ? AND partition = ?
                      AND state NOT IN ('ABANDONED','SUPERSEDED')
                      AND start_offset <= ? AND end_offset >= ? LIMIT 1
                    """, arguments: [b.topic, b.partition, b.endOffset, b.startOffset]) {
                    throw ManifestError.overlap(topic: b.topic, partition: b.partition,
                                                start: b.startOffset, end: b.endOffset, existingBatchID: existing)
                }
                let now = Date().timeIntervalSince1970
                try db.execute(sql: """
                    INSERT INTO batches (topic, partition, start_offset, end_offset, good_count, rejected_count,
                      object_key, rejected_key, file_path, file_sha256, file_size, rejected_path, rejected_sha256,
                      rejected_size, state, created_at, updated_at)
                    VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,'STAGED',?,?)
                    """, arguments: [b.topic, b.partition, b.startOffset, b.endOffset, b.goodCount, b.rejectedCount,
                                     b.objectKey, b.rejectedKey, b.filePath, b.fileSHA256, b.fileSize,
                                     b.rejectedPath, b.rejectedSHA256, b.rejectedSize, now, now])
                let id = db.lastInsertedRowID
                try Self.appendEvent(db, batchID: id, kind: "STAGED",
                                     detail: "\(b.topic)[\(b.partition)] \(b.startOffset)...\(b.endOffset) -> \(b.objectKey)")
                return id
            }
        }
    }

    /// Moves a batch from `from` to `to` (checked against ``BatchState/canTransition(to:)``) and
    /// applies `changes`, in one transaction with an event-log line. When `to == .uploading`
    /// with a new upload id, the parts recorded for older upload ids are kept for history.
    public func transition(batchID: Int64, from: BatchState, to: BatchState,
                           changes: BatchChanges = BatchChanges(), event: String? = nil) throws {
        guard from.canTransition(to: to) else {
            throw ManifestError.illegalTransition(batchID: batchID, from: from, to: to)
        }
        try wrap {
            try pool.write { db in
                guard let raw = try String.fetchOne(db, sql: "SELECT state FROM batches WHERE id = ?", arguments: [batchID]) else {
                    throw ManifestError.noSuchBatch(batchID)
                }
                let actual = BatchState(rawValue: raw) ?? .abandoned
                guard actual == from else {
                    throw ManifestError.stateMismatch(batchID: batchID, expected: from, actual: actual)
                }
                var sets = ["state = ?", "updated_at = ?"]
                var args: [(any DatabaseValueConvertible)?] = [to.rawValue, Date().timeIntervalSince1970]
                if let v = changes.uploadID { sets.append("upload_id = ?"); args.append(v) }
                if let v = changes.etag { sets.append("etag = ?"); args.append(v) }
                if let v = changes.note { sets.append("note = ?"); args.append(v) }
                args.append(batchID)
                try db.execute(sql: "UPDATE batches SET \(sets.joined(separator: ", ")) WHERE id = ?",
                               arguments: StatementArguments(args))
                try Self.appendEvent(db, batchID: batchID, kind: "\(from)->\(to)", detail: event ?? "")
            }
        }
    }

    /// Records one uploaded part of the batch's current upload (idempotent per part number).
    public func recordPart(batchID: Int64, uploadID: String, _ part: PartRecord) throws {
        try wrap {
            try pool.write { db in
                try db.execute(sql: """
                    INSERT OR REPLACE INTO parts (batch_id, upload_id, part_number, size, checksum, etag)
                    VALUES (?,?,?,?,?,?)
                    """, arguments: [batchID, uploadID, part.partNumber, part.size, part.checksum, part.etag])
            }
        }
    }

    /// Appends a line to the event log (recovery actions, operator-visible decisions).
    public func logEvent(batchID: Int64?, kind: String, detail: String) throws {
        try wrap { try pool.write { db in try Self.appendEvent(db, batchID: batchID, kind: kind, detail: detail) } }
    }

    /// Records that offsets `start...end` of a partition were deleted by retention before they
    /// were delivered. Recording the same range again changes nothing.
    public func recordLoss(topic: String, partition: Int32, start: Int64, end: Int64, detail: String) throws {
        try wrap {
            try pool.write { db in
                try db.execute(sql: """
                    INSERT OR IGNORE INTO losses (topic, partition, start_offset, end_offset, detected_at, detail)
                    VALUES (?,?,?,?,?,?)
                    """, arguments: [topic, partition, start, end, Date().timeIntervalSince1970, detail])
                if db.changesCount > 0 {
                    try Self.appendEvent(db, batchID: nil, kind: "DATA_LOSS", detail: "\(topic)[\(partition)] \(start)...\(end): \(detail)")
                }
            }
        }
    }

    /// The recorded losses, by partition and offset.
    public func losses() throws -> [LossRecord] {
        try wrap {
            try pool.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM losses ORDER BY topic, partition, start_offset").map {
                    LossRecord(topic: $0["topic"], partition: $0["partition"], startOffset: $0["start_offset"],
                               endOffset: $0["end_offset"], detectedAt: Date(timeIntervalSince1970: $0["detected_at"]),
                               detail: $0["detail"])
                }
            }
        }
    }

    /// Prunes final history (docs/protocol.md, "Manifest retention"): deletes at most `limit`
    /// COMMITTED, ABANDONED and SUPERSEDED batches last updated before `date` whose range ends
    /// below their partition's *floor* — the lowest start offset of its protected rows (every
    /// STAGED/UPLOADING/UPLOADED row, every row updated at or after `date`, and the partition's
    /// newest COMMITTED row) — with their parts and events, and up to `4 × limit` events of no
    /// batch older than `date`. The rows kept are a suffix of each partition by offset. In the
    /// same transaction each partition's horizon (``horizons()``) is raised to the pruned rows'
    /// highest end offset.
    @discardableResult
    public func prune(finalBefore date: Date, limit: Int = 5_000) throws -> PruneResult {
        precondition(limit > 0, "prune limit must be positive")
        return try wrap {
            try pool.write { db in
                let cutoff = date.timeIntervalSince1970
                let rows = try Row.fetchAll(db, sql: """
                    WITH protected(topic, partition, start_offset) AS (
                      SELECT topic, partition, start_offset FROM batches
                        WHERE state IN ('STAGED','UPLOADING','UPLOADED') OR updated_at >= ?
                      UNION ALL
                      SELECT topic, partition, max(start_offset) FROM batches WHERE state = 'COMMITTED'
                        GROUP BY topic, partition
                    ), floors AS (
                      SELECT topic, partition, min(start_offset) AS floor FROM protected GROUP BY topic, partition
                    )
                    SELECT b.id, b.topic, b.partition, b.end_offset, b.state FROM batches b
                      LEFT JOIN floors f ON f.topic = b.topic AND f.partition = b.partition
                    WHERE b.state IN ('COMMITTED','ABANDONED','SUPERSEDED') AND b.updated_at < ?
                      AND (f.floor IS NULL OR b.end_offset < f.floor)
                    ORDER BY b.id LIMIT ?
                    """, arguments: [cutoff, cutoff, limit + 1])
                let more = rows.count > limit
                var ids: [Int64] = []
                var byPartition: [String: (topic: String, partition: Int32, through: Int64, delivered: Int64?, n: Int64)] = [:]
                for row in rows.prefix(limit) {
                    let id: Int64 = row[0], topic: String = row[1], partition: Int32 = row[2], end: Int64 = row[3], state: String = row[4]
                    ids.append(id)
                    let k = "\(partition)\u{0}\(topic)"
                    var h = byPartition[k] ?? (topic, partition, end, nil, 0)
                    h.through = max(h.through, end)
                    if state == BatchState.committed.rawValue { h.delivered = max(h.delivered ?? end, end) }
                    h.n += 1
                    byPartition[k] = h
                }
                var events = 0
                // 500 ids per statement: far below SQLite's variable limit.
                for chunk in stride(from: 0, to: ids.count, by: 500).map({ Array(ids[$0..<min($0 + 500, ids.count)]) }) {
                    let marks = chunk.map { _ in "?" }.joined(separator: ",")
                    try db.execute(sql: "DELETE FROM events WHERE batch_id IN (\(marks))", arguments: StatementArguments(chunk))
                    events += db.changesCount
                    // parts go by ON DELETE CASCADE (foreign_keys = ON).
                    try db.execute(sql: "DELETE FROM batches WHERE id IN (\(marks))", arguments: StatementArguments(chunk))
                }
                let now = Date().timeIntervalSince1970
                for h in byPartition.values {
                    try db.execute(sql: """
                        INSERT INTO horizons (topic, partition, pruned_through, delivered_through, pruned_batches, updated_at)
                        VALUES (?,?,?,?,?,?)
                        ON CONFLICT(topic, partition) DO UPDATE SET
                          pruned_through = max(pruned_through, excluded.pruned_through),
                          delivered_through = CASE WHEN excluded.delivered_through IS NULL THEN delivered_through
                                                   WHEN delivered_through IS NULL THEN excluded.delivered_through
                                                   ELSE max(delivered_through, excluded.delivered_through) END,
                          pruned_batches = pruned_batches + excluded.pruned_batches,
                          updated_at = excluded.updated_at
                        """, arguments: [h.topic, h.partition, h.through, h.delivered, h.n, now])
                }
                // Events of no batch (recovery, quarantine, schema, prune notes) and of batches
                // already gone, oldest first: the scan from the lowest id stops at the limit.
                try db.execute(sql: """
                    DELETE FROM events WHERE id IN (
                      SELECT e.id FROM events e WHERE e.at < ?
                        AND (e.batch_id IS NULL OR NOT EXISTS (SELECT 1 FROM batches b WHERE b.id = e.batch_id))
                      ORDER BY e.id LIMIT ?)
                    """, arguments: [cutoff, 4 * limit])
                events += db.changesCount
                if !ids.isEmpty {
                    try Self.appendEvent(db, batchID: nil, kind: "PRUNE",
                                         detail: "\(ids.count) final batches updated before \(date) in \(byPartition.count) partitions, \(events) events")
                }
                return PruneResult(batches: ids.count, events: events, more: more)
            }
        }
    }

    /// Each pruned partition's horizon, by topic and partition. Empty for a manifest from before
    /// migration v5 opened read-only.
    public func horizons() throws -> [ManifestHorizon] {
        try wrap {
            try pool.read { db in
                guard try db.tableExists("horizons") else { return [] }
                return try Row.fetchAll(db, sql: "SELECT * FROM horizons ORDER BY topic, partition").map {
                    ManifestHorizon(topic: $0["topic"], partition: $0["partition"], prunedThrough: $0["pruned_through"],
                                    deliveredThrough: $0["delivered_through"], prunedBatches: $0["pruned_batches"],
                                    updatedAt: Date(timeIntervalSince1970: $0["updated_at"]))
                }
            }
        }
    }

    /// Rows in `batches` and `events` (for tests and the scaling bench).
    public func rowCounts() throws -> (batches: Int, events: Int) {
        try wrap {
            try pool.read { db in
                (try Int.fetchOne(db, sql: "SELECT count(*) FROM batches") ?? 0,
                 try Int.fetchOne(db, sql: "SELECT count(*) FROM events") ?? 0)
            }
        }
    }

    /// Checkpoints the WAL into the database file and truncates it (for measurements: the file
    /// then holds every committed page).
    public func checkpoint() throws {
        try wrap { try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") } }
    }

    // MARK: Reads

    /// One batch by id.
    public func batch(id: Int64) throws -> BatchRecord? {
        try wrap { try pool.read { db in try Row.fetchOne(db, sql: "SELECT \(Self.batchColumns) FROM batches WHERE id = ?", arguments: [id]).map(Self.batch(from:)) } }
    }

    /// Batches, optionally filtered, ordered by topic, partition, start offset.
    public func batches(topic: String? = nil, partition: Int32? = nil, states: [BatchState]? = nil,
                        updatedSince: Date? = nil) throws -> [BatchRecord] {
        var clauses: [String] = []
        var args: [(any DatabaseValueConvertible)?] = []
        if let topic { clauses.append("topic = ?"); args.append(topic) }
        if let partition { clauses.append("partition = ?"); args.append(partition) }
        if let states {
            clauses.append("state IN (\(states.map { _ in "?" }.joined(separator: ",")))")
            args.append(contentsOf: states.map { $0.rawValue })
        }
        if let updatedSince { clauses.append("updated_at >= ?"); args.append(updatedSince.timeIntervalSince1970) }
        let whereSQL = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        return try wrap {
            try pool.read { db in
                try Row.fetchAll(db, sql: "SELECT \(Self.batchColumns) FROM batches \(whereSQL) ORDER BY topic, partition, start_offset, id",
                                 arguments: StatementArguments(args)).map(Self.batch(from:))
            }
        }
    }

    /// Batches not in a final state (STAGED, UPLOADING, UPLOADED): the work recovery finishes.
    public func unfinishedBatches(topic: String? = nil, partition: Int32? = nil) throws -> [BatchRecord] {
        try batches(topic: topic, partition: partition, states: [.staged, .uploading, .uploaded])
    }

    /// The end offset of the last batch of the partition whose object is known to exist
    /// (UPLOADED or COMMITTED), or nil.
    public func lastDeliveredEnd(topic: String, partition: Int32) throws -> Int64? {
        try wrap {
            try pool.read { db in
                try Int64.fetchOne(db, sql: """
                    SELECT max(end_offset) FROM batches WHERE topic = ? AND partition = ? AND state IN ('UPLOADED','COMMITTED')
                    """, arguments: [topic, partition])
            }
        }
    }

    /// Parts recorded for the batch's upload `uploadID`, by part number.
    public func parts(batchID: Int64, uploadID: String) throws -> [PartRecord] {
        try wrap {
            try pool.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT * FROM parts WHERE batch_id = ? AND upload_id = ? ORDER BY part_number
                    """, arguments: [batchID, uploadID]).map {
                    PartRecord(partNumber: $0["part_number"], size: $0["size"], checksum: $0["checksum"], etag: $0["etag"])
                }
            }
        }
    }

    /// The event log, oldest first, optionally for one batch.
    public func events(batchID: Int64? = nil, limit: Int = 10_000) throws -> [ManifestEvent] {
        try wrap {
            try pool.read { db in
                let rows: [Row]
                if let batchID {
                    rows = try Row.fetchAll(db, sql: "SELECT * FROM events WHERE batch_id = ? ORDER BY id LIMIT ?", arguments: [batchID, limit])
                } else {
                    rows = try Row.fetchAll(db, sql: "SELECT * FROM events ORDER BY id LIMIT ?", arguments: [limit])
                }
                return rows.map {
                    ManifestEvent(id: $0["id"], at: Date(timeIntervalSince1970: $0["at"]), batchID: $0["batch_id"],
                                  kind: $0["kind"], detail: $0["detail"])
                }
            }
        }
    }

    /// Number of batches in each state.
    public func countsByState() throws -> [BatchState: Int] {
        try wrap {
            try pool.read { db in
                var out: [BatchState: Int] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT state, count(*) AS n FROM batches GROUP BY state") {
                    if let s = BatchState(rawValue: row["state"]) { out[s] = row["n"] }
                }
                return out
            }
        }
    }

    // MARK: Internals

    private static func appendEvent(_ db: Database, batchID: Int64?, kind: String, detail: String) throws {
        try db.execute(sql: "INSERT INTO events (at, batch_id, kind, detail) VALUES (?,?,?,?)",
                       arguments: [Date().timeIntervalSince1970, batchID, kind, detail])
    }

    /// The columns ``batch(from:)`` decodes, in its order. Rows are decoded by index: GRDB's
    /// by-name lookup lowercases the name for every column of every row, which made reading
    /// 100,000 batches at start-up take seconds.
    static let batchColumns = """
        id, topic, partition, start_offset, end_offset, good_count, rejected_count, object_key, rejected_key, \
        file_path, file_sha256, file_size, rejected_path, rejected_sha256, rejected_size, state, upload_id, etag, \
        note, created_at, updated_at
        """

    private static func batch(from row: Row) -> BatchRecord {
        BatchRecord(
            id: row[0],
            staged: NewBatch(
                topic: row[1], partition: row[2],
                startOffset: row[3], endOffset: row[4],
                goodCount: row[5], rejectedCount: row[6],
                objectKey: row[7], rejectedKey: row[8],
                filePath: row[9], fileSHA256: row[10], fileSize: row[11],
                rejectedPath: row[12], rejectedSHA256: row[13], rejectedSize: row[14]),
            state: BatchState(rawValue: row[15]) ?? .abandoned,
            uploadID: row[16], etag: row[17], note: row[18],
            createdAt: Date(timeIntervalSince1970: row[19]),
            updatedAt: Date(timeIntervalSince1970: row[20]))
    }

    private func wrap<T>(_ body: () throws -> T) throws -> T { try Self.wrap(path, body) }

    /// Turns GRDB's errors into ``ManifestError/database(path:message:)``; ours pass through.
    private static func wrap<T>(_ path: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as ManifestError {
            throw error
        } catch let error as DatabaseError {
            throw ManifestError.database(path: path, message: error.message ?? "\(error.resultCode)")
        } catch {
            throw ManifestError.database(path: path, message: "\(error)")
        }
    }
}
