import CSQLite
import Foundation
import HookgateCore

/// An event held in the spool, as a row of the file.
struct SpooledEvent: Sendable {
    enum State: String, Sendable, CaseIterable {
        /// Waiting for its next redelivery.
        case pending
        /// The app refused it with a final 4xx, or `max_age` passed: kept for the CLI, never retried.
        case dead
    }

    var id: Int64 = 0
    var route: String
    /// The destination's ledger name (`route` or `route/destination`).
    var ledger: String
    var source: String
    var eventID: String
    var type: String?
    /// Wall-clock Unix milliseconds.
    var firstSeen: Int64
    /// When redelivery stops (`first_seen + max_age`, restarted by `hookgate spool retry`).
    var expires: Int64
    var attempts: Int = 0
    var nextAttempt: Int64
    var state: State = .pending
    var lastError: String?
    /// The forwarded header fields (`RedeliveryHeaders.encode`); empty when not read.
    var headers: [UInt8] = []
    var body: [UInt8] = []

    var key: EventKey { EventKey(source: source, id: eventID) }

    /// The destination's name within its route (the route's own name in the one-destination form).
    var destination: String {
        guard let slash = ledger.firstIndex(of: "/") else { return ledger }
        return String(ledger[ledger.index(after: slash)...])
    }
}

/// The spool's SQLite file (issue 11): one row per held event, written by the gateway's spool
/// thread and by `hookgate spool` while the gateway runs (WAL lets both in; a write waits up to
/// `busyTimeoutMilliseconds` for the other). `synchronous=FULL`: a commit returns only after the
/// write-ahead log is on disk, which is what a 202 to the sender promises.
final class SpoolFile {
    /// `PRAGMA application_id`: "hksp", so that another program's database (or a ledger) is recognised.
    static let applicationID: Int64 = 0x686B_7370
    static let formatVersion: Int64 = 1
    static let busyTimeoutMilliseconds = 5_000
    /// One row per event and destination (the unique key makes spooling twice a no-op). Times
    /// are wall-clock Unix milliseconds: the file outlives the machine's monotonic clock.
    static let schema = """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            route TEXT NOT NULL,
            ledger TEXT NOT NULL,
            source TEXT NOT NULL,
            event_id TEXT NOT NULL,
            type TEXT,
            first_seen_ms INTEGER NOT NULL,
            expires_ms INTEGER NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_ms INTEGER NOT NULL,
            state TEXT NOT NULL,
            last_error TEXT,
            headers BLOB NOT NULL,
            body BLOB NOT NULL,
            UNIQUE (ledger, source, event_id)
        );
        CREATE INDEX events_due ON events (state, next_attempt_ms);
        CREATE INDEX events_expiry ON events (state, expires_ms);
        PRAGMA application_id = \(applicationID);
        PRAGMA user_version = \(formatVersion);
        """
    private static let summaryColumns =
        "id, route, ledger, source, event_id, type, first_seen_ms, expires_ms, attempts, next_attempt_ms, state, last_error"

    let path: String
    private let database: SQLiteDatabase
    private var statements: [String: SQLiteStatement] = [:]

    /// Opens the file (creating it when `create`), in WAL mode with `synchronous=FULL`, and checks
    /// that it is a hookgate spool of this format; an empty new file gets the table. A file that
    /// is something else is refused, never changed.
    init(path: String, create: Bool) throws {
        self.path = path
        if !create, !FileManager.default.fileExists(atPath: path) {
            throw SpoolError("\(path) does not exist (the gateway creates it when it starts with a spool)")
        }
        do {
            database = try SQLiteDatabase(path: path, create: create, writable: true)
            try database.execute("PRAGMA busy_timeout = \(Self.busyTimeoutMilliseconds)")
            try database.execute("PRAGMA journal_mode = WAL")
            guard try database.text("PRAGMA journal_mode") == "wal" else {
                throw SpoolError("\(path): cannot use write-ahead logging (WAL) on this file system")
            }
            try database.execute("PRAGMA synchronous = FULL")
            if try Self.identify(database, path: path) == .empty {
                try database.execute("BEGIN IMMEDIATE; \(Self.schema) COMMIT;")
            }
        } catch let error as SQLiteError {
            throw SpoolError("\(path): \(error)")
        }
    }

    /// `.empty` or `.matching`; anything else is refused with a message naming the file.
    static func identify(_ database: SQLiteDatabase, path: String) throws -> SQLiteDatabase.Identity {
        let identity = try database.identity(applicationID: applicationID, version: formatVersion)
        switch identity {
        case .empty, .matching:
            return identity
        case .otherApplication:
            throw SpoolError("\(path) is not a hookgate spool; refusing to use it (move it away to start with an empty spool)")
        case .otherVersion(let version):
            throw SpoolError("\(path) is a spool of another hookgate version (format \(version), this one reads \(formatVersion))")
        }
    }

    private func statement(_ sql: String) throws -> SQLiteStatement {
        if let s = statements[sql] {
            s.reset()
            return s
        }
        let s = try database.prepare(sql)
        statements[sql] = s
        return s
    }

    /// Runs `body` in one write transaction, committed (and on disk) when it returns; rolled back
    /// when it throws.
    func transaction<R>(_ body: () throws -> R) throws -> R {
        try database.execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try database.execute("COMMIT")
            return result
        } catch {
            try? database.execute("ROLLBACK")
            throw error
        }
    }

    /// Adds the event; false when the same event (destination, source, id) is already held.
    func insert(_ event: SpooledEvent) throws -> Bool {
        let s = try statement("""
            INSERT INTO events (route, ledger, source, event_id, type, first_seen_ms, expires_ms, attempts, next_attempt_ms,
                                state, last_error, headers, body)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, 'pending', NULL, ?9, ?10)
            ON CONFLICT (ledger, source, event_id) DO NOTHING
            """)
        defer { s.reset() }
        try s.bind(event.route, at: 1)
        try s.bind(event.ledger, at: 2)
        try s.bind(event.source, at: 3)
        try s.bind(event.eventID, at: 4)
        try s.bind(event.type, at: 5)
        try s.bind(event.firstSeen, at: 6)
        try s.bind(event.expires, at: 7)
        try s.bind(event.nextAttempt, at: 8)
        return try event.headers.withUnsafeBytes { headers in
            try event.body.withUnsafeBytes { body in
                try s.bind(headers, at: 9)
                try s.bind(body, at: 10)
                _ = try s.step()
                return s.changes > 0
            }
        }
    }

    /// The id of the row the last `insert` added.
    var lastInsertID: Int64 { database.lastInsertID }

    func count() throws -> Int { Int(try database.integer("SELECT count(*) FROM events")) }

    /// Pending events due by `now`, soonest first, with their headers and body.
    func due(now: Int64, limit: Int) throws -> [SpooledEvent] {
        let s = try statement("SELECT \(Self.summaryColumns), headers, body FROM events WHERE state = 'pending' AND next_attempt_ms <= ?1 ORDER BY next_attempt_ms LIMIT ?2")
        try s.bind(now, at: 1)
        try s.bind(Int64(limit), at: 2)
        return try rows(s, full: true)
    }

    /// The soonest next attempt of a pending event (nil when none is pending).
    func nextDue() throws -> Int64? {
        let s = try statement("SELECT min(next_attempt_ms) FROM events WHERE state = 'pending'")
        defer { s.reset() }
        guard try s.step(), !s.isNull(0) else { return nil }
        return s.int64(0)
    }

    /// Pending events whose `max_age` passed by `now` become dead; returns them (for the log).
    func expire(now: Int64) throws -> [SpooledEvent] {
        let s = try statement("SELECT \(Self.summaryColumns) FROM events WHERE state = 'pending' AND expires_ms <= ?1")
        try s.bind(now, at: 1)
        let expired = try rows(s, full: false)
        for event in expired { try markDead(id: event.id, attempts: event.attempts, error: "max_age passed") }
        return expired
    }

    func remove(id: Int64) throws {
        let s = try statement("DELETE FROM events WHERE id = ?1")
        defer { s.reset() }
        try s.bind(id, at: 1)
        _ = try s.step()
    }

    /// A failed redelivery that will be retried at `next`.
    func markRetry(id: Int64, attempts: Int, next: Int64, error: String) throws {
        let s = try statement("UPDATE events SET attempts = ?2, next_attempt_ms = ?3, last_error = ?4 WHERE id = ?1 AND state = 'pending'")
        defer { s.reset() }
        try s.bind(id, at: 1)
        try s.bind(Int64(attempts), at: 2)
        try s.bind(next, at: 3)
        try s.bind(error, at: 4)
        _ = try s.step()
    }

    func markDead(id: Int64, attempts: Int, error: String) throws {
        let s = try statement("UPDATE events SET state = 'dead', attempts = ?2, last_error = ?3 WHERE id = ?1")
        defer { s.reset() }
        try s.bind(id, at: 1)
        try s.bind(Int64(attempts), at: 2)
        try s.bind(error, at: 3)
        _ = try s.step()
    }

    /// Every event (without headers and body), oldest first; only those in `state` when given.
    func list(state: SpooledEvent.State?) throws -> [SpooledEvent] {
        let s = try statement("SELECT \(Self.summaryColumns) FROM events WHERE ?1 IS NULL OR state = ?1 ORDER BY id")
        try s.bind(state?.rawValue, at: 1)
        return try rows(s, full: false)
    }

    /// Every event with its headers and body, oldest first (export), one at a time.
    func forEach(state: SpooledEvent.State?, _ body: (SpooledEvent) throws -> Void) throws {
        let s = try statement("SELECT \(Self.summaryColumns), headers, body FROM events WHERE ?1 IS NULL OR state = ?1 ORDER BY id")
        defer { s.reset() }
        try s.bind(state?.rawValue, at: 1)
        while try s.step() { try body(Self.row(s, full: true)) }
    }

    func event(id: Int64) throws -> SpooledEvent? {
        let s = try statement("SELECT \(Self.summaryColumns), headers, body FROM events WHERE id = ?1")
        try s.bind(id, at: 1)
        return try rows(s, full: true).first
    }

    /// `hookgate spool retry`: the events become pending, due `now`, and their `max_age` clock
    /// restarts (`maxAge` per route; a route no longer configured keeps its old expiry).
    /// `id` nil: every event. Returns how many changed.
    func retry(id: Int64?, now: Int64, maxAge: (String) -> Int64?) throws -> Int {
        try transaction {
            let targets = try id.map { try event(id: $0).map { [$0] } ?? [] } ?? list(state: nil)
            let s = try statement("UPDATE events SET state = 'pending', next_attempt_ms = ?2, expires_ms = ?3 WHERE id = ?1")
            defer { s.reset() }
            for event in targets {
                s.reset()
                try s.bind(event.id, at: 1)
                try s.bind(now, at: 2)
                try s.bind(maxAge(event.route).map { now + $0 } ?? max(event.expires, now + 1), at: 3)
                _ = try s.step()
            }
            return targets.count
        }
    }

    /// `hookgate spool purge`: deletes one event, or every dead one (`id` nil).
    func purge(id: Int64?) throws -> Int {
        let s = try statement(id == nil ? "DELETE FROM events WHERE state = 'dead'" : "DELETE FROM events WHERE id = ?1")
        defer { s.reset() }
        if let id { try s.bind(id, at: 1) }
        _ = try s.step()
        return s.changes
    }

    /// Hands every held event's destination and key to `body`, one at a time (start-up: each
    /// counts as held for dedup); returns how many.
    func forEachKey(_ body: (String, EventKey) -> Void) throws -> Int {
        let s = try statement("SELECT ledger, source, event_id FROM events")
        defer { s.reset() }
        var count = 0
        while try s.step() {
            body(s.text(0) ?? "", EventKey(source: s.text(1) ?? "", id: s.text(2) ?? ""))
            count += 1
        }
        return count
    }

    /// Events by state and the first-seen time of the oldest pending one (metrics).
    func statistics() throws -> (pending: Int, dead: Int, oldestPending: Int64?) {
        let s = try statement("SELECT state, count(*), min(first_seen_ms) FROM events GROUP BY state")
        defer { s.reset() }
        var pending = 0, dead = 0
        var oldest: Int64?
        while try s.step() {
            if s.text(0) == SpooledEvent.State.pending.rawValue {
                pending = Int(s.int64(1))
                oldest = s.int64(2)
            } else {
                dead += Int(s.int64(1))
            }
        }
        return (pending, dead, oldest)
    }

    private func rows(_ s: SQLiteStatement, full: Bool) throws -> [SpooledEvent] {
        defer { s.reset() }
        var out: [SpooledEvent] = []
        while try s.step() { out.append(Self.row(s, full: full)) }
        return out
    }

    private static func row(_ s: SQLiteStatement, full: Bool) -> SpooledEvent {
        var event = SpooledEvent(route: s.text(1) ?? "", ledger: s.text(2) ?? "", source: s.text(3) ?? "", eventID: s.text(4) ?? "",
                                 type: s.text(5), firstSeen: s.int64(6), expires: s.int64(7), nextAttempt: s.int64(9))
        event.id = s.int64(0)
        event.attempts = Int(s.int64(8))
        event.state = SpooledEvent.State(rawValue: s.text(10) ?? "") ?? .dead
        event.lastError = s.text(11)
        if full {
            event.headers = Array(s.blob(12))
            event.body = Array(s.blob(13))
        }
        return event
    }
}

struct SpoolError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
