import Foundation
import HookgateCore

/// `hookgate spool ...` (issue 11): the spool file read and changed from the command line while a
/// gateway runs on it (WAL: readers never block the gateway; a change waits for its write lock
/// at most `SpoolFile.busyTimeoutMilliseconds`). The running gateway sees a `retry` on its next
/// look at the file (`Redeliverer.tickMilliseconds`). There is no spool mutation on the admin
/// port, which is unauthenticated; this needs access to the file.
public final class SpoolInspector {
    private let file: SpoolFile
    private let routes: [Configuration.Route]

    /// Opens the configuration's spool file, which must exist. Throws a message for the operator.
    public init(configuration: Configuration) throws {
        guard let spool = configuration.spool else { throw SpoolError("the configuration has no spool (spool.path)") }
        file = try SpoolFile(path: spool.path, create: false)
        routes = configuration.routes
    }

    public enum State: String, CaseIterable, Sendable { case pending, dead }

    /// The table `list` prints: a header line, then one line per event.
    public func listText(state: State?) throws -> String {
        var lines = ["ID\tROUTE\tDESTINATION\tEVENT_ID\tTYPE\tFIRST_SEEN\tATTEMPTS\tNEXT_ATTEMPT\tSTATE\tLAST_ERROR"]
        for e in try file.list(state: state.flatMap { SpooledEvent.State(rawValue: $0.rawValue) }) {
            lines.append([String(e.id), e.route, e.destination, Self.printable(e.eventID), Self.printable(e.type ?? "-"),
                          Self.iso(e.firstSeen), String(e.attempts), e.state == .pending ? Self.iso(e.nextAttempt) : "-",
                          e.state.rawValue, Self.printable(e.lastError ?? "-")].joined(separator: "\t"))
        }
        return lines.joined(separator: "\n")
    }

    /// `list --json`: one JSON array.
    public func listJSON(state: State?) throws -> String {
        let events = try file.list(state: state.flatMap { SpooledEvent.State(rawValue: $0.rawValue) })
        return "[" + events.map { Self.json($0, full: false) }.joined(separator: ",\n") + "]"
    }

    /// `show ID`: the event as one JSON object with its headers and body; nil when no such id.
    public func show(id: Int64) throws -> String? {
        try file.event(id: id).map { Self.json($0, full: true) }
    }

    /// `export`: every event, one JSON object per line, handed to `write` one at a time.
    public func export(state: State?, _ write: (String) -> Void) throws {
        try file.forEach(state: state.flatMap { SpooledEvent.State(rawValue: $0.rawValue) }) { write(Self.json($0, full: true)) }
    }

    /// `retry ID` or `retry --all` (`id` nil): pending and due now, with the route's `max_age`
    /// counted from now. Returns how many events changed (0: no such id).
    public func retry(id: Int64?) throws -> Int {
        let ages = Dictionary(routes.map { ($0.name, $0.spool?.maxAge.milliseconds) }, uniquingKeysWith: { a, _ in a })
        return try file.retry(id: id, now: WallClock.milliseconds(), maxAge: { ages[$0] ?? nil })
    }

    /// `purge ID` or `purge --dead` (`id` nil). Returns how many events were deleted.
    public func purge(id: Int64?) throws -> Int {
        try file.purge(id: id)
    }

    /// ISO-8601 UTC with milliseconds, as the log's `time`.
    static func iso(_ milliseconds: Int64) -> String { LogClock.text(unixMilliseconds: milliseconds) }

    /// A field for the tab-separated table: control characters (tabs, newlines) shown as `?`.
    static func printable(_ text: String) -> String {
        String(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "?" : Character($0) })
    }

    static func json(_ e: SpooledEvent, full: Bool) -> String {
        var fields: [(String, String)] = [
            ("id", String(e.id)), ("route", JSONText.quoted(e.route)), ("destination", JSONText.quoted(e.destination)),
            ("event_id", JSONText.quoted(e.eventID)), ("type", e.type.map(JSONText.quoted) ?? "null"),
            ("first_seen", JSONText.quoted(iso(e.firstSeen))), ("attempts", String(e.attempts)),
            ("next_attempt", e.state == .pending ? JSONText.quoted(iso(e.nextAttempt)) : "null"),
            ("state", JSONText.quoted(e.state.rawValue)), ("last_error", e.lastError.map(JSONText.quoted) ?? "null"),
        ]
        if full {
            let headers = RedeliveryHeaders.decode(e.headers).map { "[\(JSONText.quoted($0.name)),\(JSONText.quoted($0.value))]" }
            fields.append(("headers", "[" + headers.joined(separator: ",") + "]"))
            fields.append(("body", String(validating: e.body, as: UTF8.self).map(JSONText.quoted) ?? "null"))
            fields.append(("body_base64", JSONText.quoted(Base64.encode(e.body))))
        }
        return "{" + fields.map { "\(JSONText.quoted($0.0)):\($0.1)" }.joined(separator: ",") + "}"
    }
}

/// `hookgate check`: a spool file that exists must be a hookgate spool (nothing is written).
public func checkSpool(_ configuration: Configuration) throws {
    guard let path = configuration.spool?.path, FileManager.default.fileExists(atPath: path) else { return }
    do {
        _ = try SpoolFile.identify(try SQLiteDatabase(path: path, create: false), path: path)
    } catch let error as SpoolError {
        throw SpoolError("spool.path: \(error)")
    } catch let error as SQLiteError {
        throw SpoolError("spool.path: \(path): \(error)")
    }
}
