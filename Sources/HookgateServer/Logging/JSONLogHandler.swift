import CLibevent
import Foundation
import HookgateCore
import Logging

/// swift-log handler that writes one JSON object per line to stdout:
/// `{"time":"...","level":"info","msg":"...", <metadata keys>...}`. Metadata keys are written as
/// given (dotted, e.g. `event.id`). Never pass secrets, signatures or bodies as metadata.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    private let label: String

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = "{\"time\":\"\(Self.timestamp())\",\"level\":\"\(event.level.rawValue)\",\"msg\":\(JSONText.quoted(event.message.description))"
        let merged = event.metadata.map { metadata.merging($0) { $1 } } ?? metadata
        for key in merged.keys.sorted() {
            line += ",\(JSONText.quoted(key)):\(Self.render(merged[key]!))"
        }
        line += "}\n"
        LogOutput.write(line)
    }

    static func render(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let s): return JSONText.quoted(s)
        case .stringConvertible(let c):
            if let n = c as? any BinaryInteger { return "\(n)" }
            if let d = c as? Double { return d.isFinite ? "\(d)" : "null" }
            if let b = c as? Bool { return b ? "true" : "false" }
            return JSONText.quoted(c.description)
        case .array(let items): return "[" + items.map(render).joined(separator: ",") + "]"
        case .dictionary(let dict):
            return "{" + dict.keys.sorted().map { "\(JSONText.quoted($0)):\(render(dict[$0]!))" }.joined(separator: ",") + "}"
        }
    }

    private static let clock = Locked(LogClock())

    /// The current time for a log line (any thread).
    static func timestamp() -> String { clock.withLock { $0.now() } }
}

/// RFC 3339 UTC time with milliseconds for log lines; the part up to the second is formatted once
/// per second. One per thread that uses it, or under a lock.
struct LogClock {
    private var second = -1
    private var prefix = ""

    mutating func now() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        if second != ts.tv_sec {
            second = ts.tv_sec
            prefix = Self.secondsText(ts.tv_sec)
        }
        return Self.join(prefix, milliseconds: ts.tv_nsec / 1_000_000)
    }

    /// `prefix` + `.mmmZ`, written into one new string (on every request: no chain of appends).
    private static func join(_ prefix: String, milliseconds ms: Int) -> String {
        prefix.withUTF8Bytes { head in
            String(unsafeUninitializedCapacity: head.count + 5) { out in
                _ = out.initialize(from: head)
                let n = head.count
                out[n] = UInt8(ascii: ".")
                out[n + 1] = UInt8(truncatingIfNeeded: ms / 100 % 10) + 0x30
                out[n + 2] = UInt8(truncatingIfNeeded: ms / 10 % 10) + 0x30
                out[n + 3] = UInt8(truncatingIfNeeded: ms % 10) + 0x30
                out[n + 4] = UInt8(ascii: "Z")
                return n + 5
            }
        }
    }

    /// The same form for any time (the spool's times in `hookgate spool`).
    static func text(unixMilliseconds: Int64) -> String {
        let (seconds, milliseconds) = unixMilliseconds.quotientAndRemainder(dividingBy: 1000)
        return join(secondsText(Int(seconds)), milliseconds: Int(milliseconds))
    }

    /// `2026-12-02T14:02:25`, UTC.
    private static func secondsText(_ unixSeconds: Int) -> String {
        var parts = tm()
        var seconds = time_t(unixSeconds)
        gmtime_r(&seconds, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S", &parts)
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}

/// One worker's access-log lines, written with one write(2) per turn of its loop instead of one
/// per request: the first line of a turn activates an event that runs after the turn's other
/// callbacks. Used on the worker's thread only.
final class AccessLogBatch {
    private var pending = ByteWriter(capacity: 4096)
    /// The time for this worker's lines (no lock: one worker, one thread).
    var clock = LogClock()
    private var flushEvent: OpaquePointer!
    /// Beyond this many bytes the batch is written at once.
    static let limit = 64 * 1024

    init(base: OpaquePointer) {
        flushEvent = event_new(base, -1, 0, { _, _, arg in
            Unmanaged<AccessLogBatch>.fromOpaque(arg!).takeUnretainedValue().flush()
        }, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        flush()
        event_free(flushEvent)
    }

    func append(_ record: AccessLogRecord) {
        let first = pending.count == 0
        record.writeJSONLine(to: &pending)
        if pending.count >= Self.limit {
            flush()
        } else if first {
            event_active(flushEvent, EV_TIMEOUT, 0)
        }
    }

    func flush() {
        guard pending.count > 0 else { return }
        pending.withBytes { LogOutput.write($0) }
        pending.removeAll()
    }
}

/// Serialises whole lines onto stdout from any thread.
enum LogOutput {
    private static let lock = NSLock()

    static func write(_ line: String) {
        var text = line
        text.withUTF8 { write(UnsafeRawBufferPointer($0)) }
    }

    static func write(_ line: [UInt8]) {
        line.withUnsafeBytes { write($0) }
    }

    /// One write(2) per line, under a lock so lines from different threads never interleave.
    static func write(_ bytes: UnsafeRawBufferPointer) {
        lock.lock()
        defer { lock.unlock() }
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(1, bytes.baseAddress! + offset, bytes.count - offset)
            if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { return }
        }
    }
}
