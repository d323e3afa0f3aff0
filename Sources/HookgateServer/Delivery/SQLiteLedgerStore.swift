import Foundation
import HookgateCore
import Logging

/// `ledger.store: sqlite`: delivered ids survive restarts of one replica. The local ledger stays
/// the index that answers requests; this store appends what it learns to a table in a SQLite
/// file (WAL, `synchronous=NORMAL`) from one background thread that commits at most every
/// `commit_interval`, so the request path only appends to a queue under a short lock. At start
/// the file is loaded into the local ledger. After a SIGKILL at most the last commit interval is
/// lost (after a power cut, the commits since the last checkpoint): those events may be forwarded
/// once more, never lost. A file that is not a hookgate ledger is refused, never emptied.
final class SQLiteLedgerStore: LedgerStore, @unchecked Sendable {
    /// `PRAGMA application_id`: "hkgt", so that another program's database is recognised.
    static let applicationID: Int64 = 0x686B_6774
    /// `PRAGMA user_version`: the layout below.
    static let formatVersion: Int64 = 1
    /// Append-only: a row each time an id is delivered or seen again as a duplicate, in that
    /// order (`seq`, the rowid); loading oldest first leaves each id with its newest row. No index,
    /// so that a write is one append (and an id costs its bytes once on disk). Route, source and
    /// id are their exact bytes; `expires_ms` is wall-clock Unix milliseconds, because the
    /// monotonic clock the local ledger uses restarts with the machine. bench/ledger_fill.py
    /// writes the same.
    static let schema = """
        CREATE TABLE delivered (
            seq INTEGER PRIMARY KEY,
            route BLOB NOT NULL,
            source BLOB NOT NULL,
            id BLOB NOT NULL,
            expires_ms INTEGER NOT NULL
        );
        PRAGMA application_id = \(applicationID);
        PRAGMA user_version = \(formatVersion);
        """
    /// How often expired rows and the oldest rows beyond `rowsPerCapacity` times a route's
    /// capacity are deleted, so that the file stays bounded (also once at start and at shutdown).
    static let pruneIntervalMilliseconds: Int64 = 60_000
    /// Rows kept per id of capacity: room for ids seen again (each renewal is a row), so that
    /// loading still finds `dedup.capacity` distinct ids.
    static let rowsPerCapacity = 2
    /// An expiry read from the file is taken as at most this far ahead (the longest ttl is far
    /// shorter; the ledger cuts it to the route's ttl).
    static let longestExpiryMilliseconds: Int64 = 100 * 365 * 86_400_000
    /// Rows waiting for the writer beyond this are dropped (counted as errors): a stalled disk
    /// must not grow memory without bound, and a forgotten id only costs a duplicate.
    static let maximumPending = 1_000_000

    private struct Row {
        let route: String
        let key: EventKey
        let expiresAt: Int64  // wall-clock ms
    }

    private let path: String
    private let commitIntervalMilliseconds: Int64
    private let ledger: SharedLedger
    private let metrics: LedgerMetrics
    private let log = Logger(label: "hookgate")
    private let database: SQLiteDatabase
    private let append: SQLiteStatement
    private let deleteExpired: SQLiteStatement
    private let countRoutes: SQLiteStatement
    private let trimRoute: SQLiteStatement
    private let begin: SQLiteStatement
    private let commitTransaction: SQLiteStatement
    private let rollback: SQLiteStatement

    // The writer thread's own.
    private var failedSinceLog = 0
    private var lastFailureLog = Int64.min / 2

    // Shared between the request path and the writer, under `condition`.
    private let condition = NSCondition()
    private var pending: [Row] = []
    private var dropped = 0
    private var stopping = false
    private var writerRunning = false

    /// Opens (or creates) the file, refuses it if it is not a hookgate ledger, loads it into
    /// `ledger` (whose routes must already be configured) and starts the writer.
    init(_ configuration: LedgerConfiguration.SQLite, ledger: SharedLedger, metrics: LedgerMetrics) throws {
        path = configuration.path
        commitIntervalMilliseconds = configuration.commitInterval.milliseconds
        self.ledger = ledger
        self.metrics = metrics
        do {
            database = try Self.open(path: path, create: true)
            // Held until exit: a second process on the same file would miss this one's
            // deliveries, so it is refused at start (the kernel drops the lock if this one dies).
            try database.execute("PRAGMA locking_mode = EXCLUSIVE; BEGIN IMMEDIATE; COMMIT;")
            try database.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            guard try database.text("PRAGMA journal_mode") == "wal" else {
                throw LedgerStoreError(description: "ledger.sqlite.path: \(path): cannot use write-ahead logging (WAL) on this file system")
            }
            append = try database.prepare("INSERT INTO delivered (route, source, id, expires_ms) VALUES (?1, ?2, ?3, ?4)")
            deleteExpired = try database.prepare("DELETE FROM delivered WHERE expires_ms <= ?1")
            countRoutes = try database.prepare("SELECT route, count(*) FROM delivered GROUP BY route")
            begin = try database.prepare("BEGIN")
            commitTransaction = try database.prepare("COMMIT")
            rollback = try database.prepare("ROLLBACK")
            trimRoute = try database.prepare("""
                DELETE FROM delivered WHERE route = ?1 AND seq < \
                (SELECT seq FROM delivered WHERE route = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)
                """)
            try load()
        } catch let error as SQLiteError {
            throw LedgerStoreError(description: error.isBusy
                ? "ledger.sqlite.path: \(path) is in use by another process (another hookgate?); one process per ledger file"
                : "ledger.sqlite.path: \(path): \(error)")
        }
        writerRunning = true
        let thread = Thread { [self] in runWriter() }
        thread.name = "hg-ledger-sqlite"
        thread.start()
    }

    /// Opens `path` and checks that it is a hookgate ledger of this format (creating the table
    /// in a new, empty file when `create`). Nothing is written to a file that is refused. A file
    /// locked by another process throws the `SQLiteError` (see `isBusy`).
    static func open(path: String, create: Bool) throws -> SQLiteDatabase {
        let refused = "refusing to start rather than empty it; move it away to start with an empty ledger"
        let database: SQLiteDatabase
        do {
            database = try SQLiteDatabase(path: path, create: create)
        } catch let error as SQLiteError {
            throw LedgerStoreError(description: "ledger.sqlite.path: cannot open \(path): \(error)")
        }
        do {
            switch try database.identity(applicationID: applicationID, version: formatVersion) {
            case .empty:
                if create { try database.execute("BEGIN; \(schema) COMMIT;") }
                return database
            case .otherApplication(let application):
                throw LedgerStoreError(description: "ledger.sqlite.path: \(path) is a SQLite database of another application "
                    + "(application_id \(application), hookgate's is \(applicationID)), not a hookgate ledger; \(refused)")
            case .otherVersion(let version):
                throw LedgerStoreError(description: "ledger.sqlite.path: \(path) is a hookgate ledger of format \(version); "
                    + "this hookgate reads format \(formatVersion); \(refused)")
            case .matching:
                break
            }
            let check = try database.text("PRAGMA quick_check") ?? "no answer"
            guard check == "ok" else {
                throw LedgerStoreError(description: "ledger.sqlite.path: \(path) is damaged (quick_check: \(check)); \(refused)")
            }
            return database
        } catch let error as SQLiteError where error.isBusy {
            throw error
        } catch let error as SQLiteError {
            let what = error.isNotADatabase ? "is not a hookgate ledger (\(error))" : "cannot be read (\(error))"
            throw LedgerStoreError(description: "ledger.sqlite.path: \(path) \(what); \(refused)")
        }
    }

    /// Fills the local ledger: unexpired rows, oldest first, with wall-clock expiries turned into
    /// the monotonic clock's; the ledger keeps the most recent `dedup.capacity` of each route.
    /// Rows of routes no longer configured are skipped (and kept until they expire).
    private func load() throws {
        let started = MonotonicClock.milliseconds()
        let wallNow = WallClock.milliseconds()
        let rows = try database.prepare("SELECT route, source, id, expires_ms FROM delivered WHERE expires_ms > ?1 ORDER BY seq")
        try rows.bind(wallNow, at: 1)
        var read = 0
        var lastRoute = ""
        var lastRouteBytes: [UInt8] = []
        try ledger.restoring { restore in
            let now = MonotonicClock.milliseconds()
            while try rows.step() {
                let routeBytes = rows.blob(0)
                if !routeBytes.elementsEqual(lastRouteBytes) {
                    lastRouteBytes = Array(routeBytes)
                    lastRoute = String(decoding: routeBytes, as: UTF8.self)
                }
                let key = EventKey(source: String(decoding: rows.blob(1), as: UTF8.self),
                                   id: String(decoding: rows.blob(2), as: UTF8.self))
                // Bounded, so that a nonsense value (a huge number, text) cannot overflow; the
                // ledger cuts it to one ttl anyway.
                let expires = max(wallNow, min(rows.int64(3), wallNow + Self.longestExpiryMilliseconds))
                restore(lastRoute, key, now + (expires - wallNow), now)
                read += 1
            }
        }
        let loaded = ledger.statistics().reduce(0) { $0 + $1.entries }
        log.info("ledger loaded", metadata: [
            "ledger.path": .string(path), "ledger.ids": .stringConvertible(loaded), "ledger.rows": .stringConvertible(read),
            "ledger.load_ms": .stringConvertible(MonotonicClock.milliseconds() - started),
        ])
    }

    func claim(route: String, key: EventKey, retryCount: Int, worker: Worker, answer: @escaping (StoreClaim) -> Void) {
        // The local ledger, loaded from the file at start, has already said the event is new.
        answer(.forward)
    }

    func recordDelivered(route: String, key: EventKey, ttlMilliseconds: Int64, worker: Worker) {
        enqueue(Row(route: route, key: key, expiresAt: WallClock.milliseconds() + ttlMilliseconds))
    }

    /// Nothing was written for a claim, so there is nothing to take back.
    func release(route: String, key: EventKey, worker: Worker) {}

    func renew(route: String, key: EventKey, ttlMilliseconds: Int64, worker: Worker) {
        enqueue(Row(route: route, key: key, expiresAt: WallClock.milliseconds() + ttlMilliseconds))
    }

    private func enqueue(_ row: Row) {
        condition.lock()
        if pending.count < Self.maximumPending {
            pending.append(row)
            if pending.count == 1 { condition.signal() }
        } else {
            dropped += 1
        }
        condition.unlock()
    }

    /// Commits what is queued, prunes, checkpoints the WAL into the file and closes it. Blocks
    /// until done; later calls return at once.
    func flush() {
        condition.lock()
        stopping = true
        condition.signal()
        while writerRunning { condition.wait() }
        condition.unlock()
    }

    /// The writer thread: waits for rows, commits them in one transaction, then lets at least
    /// `commitInterval` pass before the next commit so that rows arriving meanwhile share it.
    private func runWriter() {
        pruneOrLog()  // here rather than in init: start-up does not wait for it
        var lastPrune = MonotonicClock.milliseconds()
        var writtenSincePrune = false
        var batch: [Row] = []
        while true {
            condition.lock()
            while pending.isEmpty, !stopping {
                if !condition.wait(until: Date(timeIntervalSinceNow: Double(Self.pruneIntervalMilliseconds) / 1000)) { break }
            }
            swap(&batch, &pending)
            let lost = dropped
            dropped = 0
            let stop = stopping
            condition.unlock()

            let started = MonotonicClock.milliseconds()
            if lost > 0 {
                metrics.errors.increment(by: Int64(lost))
                log.error("ledger writer falling behind; ids dropped (they may be forwarded again after a restart)",
                          metadata: ["ledger.path": .string(path), "ledger.dropped": .stringConvertible(lost)])
            }
            if !batch.isEmpty {
                commit(batch)
                writtenSincePrune = true
                batch.removeAll(keepingCapacity: true)
            }
            if stop { break }
            if writtenSincePrune, started - lastPrune >= Self.pruneIntervalMilliseconds {
                pruneOrLog()
                lastPrune = started
                writtenSincePrune = false
            }
            let rest = commitIntervalMilliseconds - (MonotonicClock.milliseconds() - started)
            if rest > 0 { usleep(UInt32(rest * 1000)) }
        }
        pruneOrLog()
        do {
            try database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        } catch {
            log.error("ledger checkpoint failed", metadata: ["ledger.path": .string(path), "error": .string("\(error)")])
        }
        database.close()
        condition.lock()
        writerRunning = false
        condition.broadcast()
        condition.unlock()
    }

    /// One transaction for the batch. On failure the batch is given up (counted and logged):
    /// those ids may be forwarded again after a restart, which the rule allows.
    private func commit(_ batch: [Row]) {
        do {
            try run(begin)
            do {
                for row in batch {
                    var route = row.route, source = row.key.source, id = row.key.id
                    try route.withUTF8 { r in
                        try source.withUTF8 { s in
                            try id.withUTF8 { i in
                                try append.bind(UnsafeRawBufferPointer(r), at: 1)
                                try append.bind(UnsafeRawBufferPointer(s), at: 2)
                                try append.bind(UnsafeRawBufferPointer(i), at: 3)
                                try append.bind(row.expiresAt, at: 4)
                                defer { append.reset() }
                                _ = try append.step()
                            }
                        }
                    }
                }
                try run(commitTransaction)
            } catch {
                try? run(rollback)
                throw error
            }
            metrics.writes.increment(by: Int64(batch.count))
        } catch {
            metrics.errors.increment(by: Int64(batch.count))
            failedSinceLog += batch.count
            // A full or failing disk fails every commit: one line per 10 s, with the count.
            let now = MonotonicClock.milliseconds()
            if now - lastFailureLog >= 10_000 {
                log.error("ledger commit failed; these ids may be forwarded again after a restart",
                          metadata: ["ledger.path": .string(path), "ledger.ids": .stringConvertible(failedSinceLog),
                                     "error": .string("\(error)")])
                lastFailureLog = now
                failedSinceLog = 0
            }
        }
        condition.lock()
        metrics.pending.set(Double(pending.count))
        condition.unlock()
    }

    private func run(_ statement: SQLiteStatement) throws {
        defer { statement.reset() }
        _ = try statement.step()
    }

    /// Deletes expired rows and, per configured route, the oldest rows beyond `rowsPerCapacity`
    /// times its capacity.
    private func prune() throws {
        try deleteExpired.bind(WallClock.milliseconds(), at: 1)
        defer { deleteExpired.reset() }
        _ = try deleteExpired.step()
        // One pass counts every route's rows; only routes over their bound are trimmed.
        let capacities = ledger.capacities()
        var over: [(route: [UInt8], kept: Int)] = []
        defer { countRoutes.reset() }
        while try countRoutes.step() {
            let route = countRoutes.blob(0)
            guard let capacity = capacities[String(decoding: route, as: UTF8.self)] else { continue }
            let kept = capacity * Self.rowsPerCapacity
            if countRoutes.int64(1) > Int64(kept) { over.append((Array(route), kept)) }
        }
        countRoutes.reset()
        for (route, kept) in over {
            try route.withUnsafeBytes { bytes in
                try trimRoute.bind(bytes, at: 1)
                try trimRoute.bind(Int64(kept - 1), at: 2)
                defer { trimRoute.reset() }
                _ = try trimRoute.step()
            }
        }
    }

    private func pruneOrLog() {
        do {
            try prune()
        } catch {
            log.error("ledger prune failed", metadata: ["ledger.path": .string(path), "error": .string("\(error)")])
        }
    }
}

extension WallClock {
    /// Wall-clock Unix milliseconds (expiries in the sqlite ledger file).
    static func milliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}
