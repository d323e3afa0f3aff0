import CSQLite

/// A failed SQLite call: its result code and SQLite's own message.
struct SQLiteError: Error, CustomStringConvertible {
    let code: Int32
    let message: String
    var description: String { message }
    /// The file is not a database, or its pages are damaged.
    var isNotADatabase: Bool { code & 0xFF == SQLITE_NOTADB || code & 0xFF == SQLITE_CORRUPT }
    /// Another connection holds a lock on the file.
    var isBusy: Bool { code & 0xFF == SQLITE_BUSY || code & 0xFF == SQLITE_LOCKED }
}

/// One SQLite connection, used by one thread at a time (opened without SQLite's own mutex): the
/// one place where result codes become `SQLiteError`s.
final class SQLiteDatabase {
    private var handle: OpaquePointer?

    /// Opens `path`; `create` makes the file when missing, otherwise it is opened read-only, or
    /// read-write without creating it when `writable`.
    /// Closing never checkpoints on its own, so that a file refused at start is left exactly as
    /// it was found (the store checkpoints explicitly when it shuts down).
    init(path: String, create: Bool, writable: Bool = false) throws {
        let mode = create ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : writable ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY
        let flags = mode | SQLITE_OPEN_NOMUTEX
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_close(db)
            throw SQLiteError(code: rc, message: message)
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
        hg_sqlite_no_checkpoint_on_close(db)
    }

    deinit { close() }

    func close() {
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    /// Runs statements that return no rows of interest.
    func execute(_ sql: String) throws {
        try check(sqlite3_exec(handle, sql, nil, nil, nil))
    }

    func prepare(_ sql: String) throws -> SQLiteStatement {
        var statement: OpaquePointer?
        try check(sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil))
        return SQLiteStatement(statement!, database: self)
    }

    /// The first column of the first row of `sql`, as text (PRAGMAs).
    func text(_ sql: String) throws -> String? {
        let statement = try prepare(sql)
        return try statement.step() ? statement.text(0) : nil
    }

    func integer(_ sql: String) throws -> Int64 {
        let statement = try prepare(sql)
        return try statement.step() ? statement.int64(0) : 0
    }

    /// What the file is, by the numbers hookgate writes into its header (`PRAGMA application_id`,
    /// `PRAGMA user_version`): a new empty database, one of `applicationID` in `version`, or not.
    enum Identity: Equatable {
        case empty
        case matching
        case otherApplication(Int64)
        case otherVersion(Int64)
    }

    func identity(applicationID: Int64, version: Int64) throws -> Identity {
        let application = try integer("PRAGMA application_id")
        let found = try integer("PRAGMA user_version")
        if application == 0, found == 0, try integer("SELECT count(*) FROM sqlite_master") == 0 { return .empty }
        if application != applicationID { return .otherApplication(application) }
        return found == version ? .matching : .otherVersion(found)
    }

    /// The number of rows the last statement changed (an `INSERT ... DO NOTHING` that did nothing: 0).
    var changes: Int { Int(sqlite3_changes(handle)) }

    /// The rowid of the last row inserted on this connection.
    var lastInsertID: Int64 { sqlite3_last_insert_rowid(handle) }

    func check(_ rc: Int32) throws {
        guard rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE else {
            throw SQLiteError(code: rc, message: handle.map { String(cString: sqlite3_errmsg($0)) } ?? "SQLite error \(rc)")
        }
    }
}

/// A prepared statement: bind, step, read columns, reset. Bound blobs are not copied
/// (SQLITE_STATIC), so they must stay alive until the statement is stepped and reset.
final class SQLiteStatement {
    private let statement: OpaquePointer
    private let database: SQLiteDatabase

    fileprivate init(_ statement: OpaquePointer, database: SQLiteDatabase) {
        self.statement = statement
        self.database = database
    }

    deinit { sqlite3_finalize(statement) }

    func bind(_ value: Int64, at index: Int32) throws {
        try database.check(sqlite3_bind_int64(statement, index, value))
    }

    func bind(_ bytes: UnsafeRawBufferPointer, at index: Int32) throws {
        // A zero-length blob still needs a non-null pointer, or SQLite binds NULL.
        let base = bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!
        try database.check(sqlite3_bind_blob(statement, index, base, Int32(bytes.count), nil))
    }

    /// Text, copied by SQLite (so the string need not outlive the call); nil binds NULL.
    func bind(_ text: String?, at index: Int32) throws {
        guard let text else {
            try database.check(sqlite3_bind_null(statement, index))
            return
        }
        let bytes = Array(text.utf8)
        try bytes.withUnsafeBufferPointer { buffer in
            try buffer.withMemoryRebound(to: CChar.self) { chars in
                try database.check(hg_sqlite_bind_text(statement, index, chars.baseAddress ?? UnsafePointer(bitPattern: 1)!, Int32(chars.count)))
            }
        }
    }

    /// True when a row is available; false when the statement is done.
    func step() throws -> Bool {
        let rc = sqlite3_step(statement)
        try database.check(rc)
        return rc == SQLITE_ROW
    }

    /// Ready for the next binding; also releases any lock a read held.
    func reset() {
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
    }

    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(statement, column) }

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(statement, column) == SQLITE_NULL }

    /// The number of rows the statement changed when it was last stepped.
    var changes: Int { database.changes }

    func text(_ column: Int32) -> String? {
        sqlite3_column_text(statement, column).map { String(cString: $0) }
    }

    /// The column's bytes, valid until the next step or reset.
    func blob(_ column: Int32) -> UnsafeRawBufferPointer {
        let count = Int(sqlite3_column_bytes(statement, column))
        guard count > 0, let base = sqlite3_column_blob(statement, column) else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base, count: count)
    }
}
