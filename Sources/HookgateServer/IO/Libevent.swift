import CLibevent
import Foundation
import HookgateCore
import Logging

/// The one place where libevent is set up and its failures become Swift errors.
enum Libevent {
    /// Must run before any event base is created: enables libevent's locking (workers post to each
    /// other's bases) and routes libevent's own messages into the application log.
    static let initialize: Void = {
        _ = evthread_use_pthreads()
        event_set_log_callback { severity, message in
            let text = message.map { String(cString: $0) } ?? ""
            let level: Logger.Level = severity >= EVENT_LOG_ERR ? .error : (severity >= EVENT_LOG_WARN ? .warning : .debug)
            // A message libevent repeats in a loop is written at most once a second.
            guard let suppressed = libeventRepeats.withLock({ $0.admit(text, now: MonotonicClock.milliseconds()) }) else { return }
            var metadata: Logger.Metadata = ["libevent.message": .string(text)]
            if suppressed > 0 { metadata["suppressed"] = .stringConvertible(suppressed) }
            libeventLogger.log(level: level, "libevent", metadata: metadata)
        }
        // A client that closes its connection while we write must not kill the process.
        signal(SIGPIPE, SIG_IGN)
    }()
}

private let libeventLogger = Logger(label: "hookgate.libevent")
private let libeventRepeats = Locked(RepeatedLineLimiter())

/// A failed system or libevent call, with errno's text when there is one.
public struct SystemError: Error, CustomStringConvertible {
    public var description: String

    init(_ what: String, errno code: Int32 = errno) {
        description = code == 0 ? what : "\(what): \(String(cString: strerror(code)))"
    }
}

/// Milliseconds and microseconds on the monotonic clock (durations, TTLs, deadlines).
enum MonotonicClock {
    static func milliseconds() -> Int64 { Int64(hg_monotonic_ms()) }
    static func microseconds() -> Int64 { Int64(hg_monotonic_us()) }
}

/// Wall-clock Unix seconds (the timestamp window compares against the sender's clock).
enum WallClock {
    static func seconds() -> Int64 { Int64(time(nil)) }
}

extension timeval {
    init(milliseconds: Int64) {
        self.init(tv_sec: Int(milliseconds / 1000), tv_usec: Int((milliseconds % 1000) * 1000))
    }
}

/// A plain mutual-exclusion lock around a value. Sendable because every access to the value goes
/// through `withLock`; what the body hands out of it must be safe to share on its own.
final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()

    init(_ value: Value) { self.value = value }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
