import CLibevent
import Foundation
import HookgateCore
import Logging

/// Where and how to reach the shared ledger's Redis (from `ledger.redis`).
struct RedisEndpoint {
    var host: String
    var port: UInt16
    var database: Int
    var username: [UInt8]?
    var password: [UInt8]?
    /// Deadline of one command.
    var timeoutMilliseconds: Int64
    /// Set for `rediss://`.
    var tls: TLSContext?
    var verifyPeer: Bool
}

/// Why a command got no reply. Error replies are not failures here: they arrive as
/// `.error` values (the store decides: `NOSCRIPT` is an answer, the rest count as failures).
enum RedisFailure: Error, CustomStringConvertible {
    case timedOut
    case connectionLost(String)
    /// Between reconnect attempts: failed at once rather than queued.
    case reconnecting(String)

    var description: String {
        switch self {
        case .timedOut: "timed out"
        case .connectionLost(let detail): "connection lost: \(detail)"
        case .reconnecting(let detail): "reconnecting after: \(detail)"
        }
    }
}

/// One RESP2 connection to Redis on a worker's event base: commands are pipelined and replies
/// matched to them in order; every command has a deadline and always calls back (reply,
/// timeout or lost connection), on the base's thread. A failed or timed-out connection is
/// closed; commands sent during the backoff that follows (50 ms doubling to 2 s) fail at once,
/// and the next one after it reconnects, resolving the host name again (managed failover moves
/// the name). Each connection authenticates (`AUTH`), selects its database and, once per
/// process, checks the server's version.
///
/// Ownership: the owner (the Redis store, per worker) keeps the connection for the process's
/// life; libevent callbacks get it unretained and are gone once `shutDown` freed them.
final class RedisConnection {
    typealias Reply = (Result<RESPValue, RedisFailure>) -> Void

    private struct Pending {
        let deadline: Int64
        let reply: Reply
    }

    private let base: OpaquePointer
    private let dns: OpaquePointer?
    private let endpoint: RedisEndpoint
    private let log: Logger
    private var bev: OpaquePointer?
    private var reader = RESPReader()
    private var pending: [Pending] = []
    private var pendingHead = 0
    private var deadlineTimer: OpaquePointer!
    private var armedDeadline: Int64 = .max
    /// While set, commands fail at once until this monotonic time.
    private var backoffUntil: Int64 = 0
    private var backoff: Int64 = 50
    private var lastFailure = ""
    /// The last handshake problem logged, so that a persistent one is logged once.
    private var loggedProblem = ""
    private var input: [UInt8] = []

    /// Whether this process has read the server's version (logged once, by one connection).
    private static let versionChecked = Locked(false)

    init(base: OpaquePointer, endpoint: RedisEndpoint, log: Logger) {
        self.base = base
        self.endpoint = endpoint
        self.log = log
        dns = UpstreamResolver.make(base: base)
        deadlineTimer = event_new(base, -1, 0, { _, _, arg in
            Unmanaged<RedisConnection>.fromOpaque(arg!).takeUnretainedValue().deadlinePassed()
        }, Unmanaged.passUnretained(self).toOpaque())
    }

    /// Frees the libevent objects; pending commands fail. Runs on the base's thread, or after
    /// its loop has stopped.
    func shutDown() {
        close(.connectionLost("shutting down"), backoff: false)
        if let deadlineTimer { event_free(deadlineTimer) }
        deadlineTimer = nil
        if let dns { evdns_base_free(dns, 0) }
    }

    /// Commands sent and not yet answered.
    var inFlight: Int { pending.count - pendingHead }

    /// Sends one command; `reply` runs exactly once, on the base's thread (at once when the
    /// connection is backing off).
    func send(_ command: [[UInt8]], reply: @escaping Reply) {
        let now = MonotonicClock.milliseconds()
        if bev == nil {
            if now < backoffUntil {
                reply(.failure(.reconnecting(lastFailure)))
                return
            }
            guard connect() else {
                reply(.failure(.reconnecting(lastFailure)))
                return
            }
        }
        write(command, deadline: now + endpoint.timeoutMilliseconds, reply: reply)
    }

    private func write(_ command: [[UInt8]], deadline: Int64, reply: @escaping Reply) {
        guard let bev else {
            reply(.failure(.connectionLost(lastFailure)))
            return
        }
        let bytes = RESPCommand.encode(command)
        _ = bytes.withUnsafeBytes { bufferevent_write(bev, $0.baseAddress, $0.count) }
        pending.append(Pending(deadline: deadline, reply: reply))
        arm()
    }

    private func connect() -> Bool {
        let options = Int32(BEV_OPT_CLOSE_ON_FREE.rawValue)
        var made: OpaquePointer?
        if let tls = endpoint.tls {
            if let ssl = tls.clientSession(host: endpoint.host, verify: endpoint.verifyPeer) {
                made = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, options)
                if let made { bufferevent_openssl_set_allow_dirty_shutdown(made, 1) }
            }
        } else {
            made = bufferevent_socket_new(base, -1, options)
        }
        guard let made else {
            failedToStart("cannot create a socket")
            return false
        }
        let me = Unmanaged.passUnretained(self).toOpaque()
        bufferevent_setcb(made, { _, arg in
            Unmanaged<RedisConnection>.fromOpaque(arg!).takeUnretainedValue().readable()
        }, nil, { _, events, arg in
            Unmanaged<RedisConnection>.fromOpaque(arg!).takeUnretainedValue().event(events)
        }, me)
        bufferevent_enable(made, Int16(EV_READ | EV_WRITE))
        guard bufferevent_socket_connect_hostname(made, dns, AF_UNSPEC, endpoint.host, Int32(endpoint.port)) == 0 else {
            bufferevent_free(made)
            failedToStart("cannot connect to \(endpoint.host):\(endpoint.port)")
            return false
        }
        bev = made
        reader = RESPReader()
        handshake()
        return true
    }

    private func failedToStart(_ detail: String) {
        lastFailure = detail
        startBackoff()
    }

    /// AUTH, SELECT and the version check go first in the pipeline; the caller's command
    /// follows without waiting (if AUTH fails, it gets Redis's NOAUTH error).
    private func handshake() {
        let deadline = MonotonicClock.milliseconds() + endpoint.timeoutMilliseconds
        if let password = endpoint.password {
            let auth: [[UInt8]] = endpoint.username.map { [Array("AUTH".utf8), $0, password] } ?? [Array("AUTH".utf8), password]
            write(auth, deadline: deadline) { [self] result in
                if case .success(.error(let e)) = result { problem("redis authentication failed: " + String(decoding: e, as: UTF8.self)) }
            }
        }
        if endpoint.database != 0 {
            write([Array("SELECT".utf8), Array(String(endpoint.database).utf8)], deadline: deadline) { [self] result in
                if case .success(.error(let e)) = result { problem("redis SELECT failed: " + String(decoding: e, as: UTF8.self)) }
            }
        }
        let first = Self.versionChecked.withLock { checked in
            defer { checked = true }
            return !checked
        }
        guard first else { return }
        write([Array("INFO".utf8), Array("server".utf8)], deadline: deadline) { [self] result in
            switch result {
            case .success(.bulk(let text?)):
                guard let version = RedisServerVersion(info: text) else {
                    log.warning("redis server version unknown", metadata: ["redis.host": .string(endpoint.host)])
                    return
                }
                if version.isSupported {
                    log.info("redis connected", metadata: ["redis.host": .string(endpoint.host), "redis.version": .string(version.description)])
                } else {
                    log.error("redis server too old: the shared ledger needs Redis >= 7.0 or Valkey >= 7.2 (SET ... NX GET)",
                              metadata: ["redis.host": .string(endpoint.host), "redis.version": .string(version.description)])
                }
            case .success(let other):
                log.warning("redis server version not checked", metadata: ["redis.reply": .string(Self.describe(other))])
            case .failure:
                Self.versionChecked.withLock { $0 = false }  // the next connection tries again
            }
        }
    }

    private func problem(_ text: String) {
        guard text != loggedProblem else { return }
        loggedProblem = text
        log.error("\(text)", metadata: ["redis.host": .string(endpoint.host)])
    }

    private func readable() {
        guard let bev else { return }
        let buffer = bufferevent_get_input(bev)!
        let count = evbuffer_get_length(buffer)
        guard count > 0 else { return }
        if input.count < count { input = [UInt8](repeating: 0, count: count) }
        let copied = input.withUnsafeMutableBytes { evbuffer_remove(buffer, $0.baseAddress, count) }
        guard copied > 0 else { return }
        reader.append(input[..<Int(copied)])
        while self.bev != nil {
            switch reader.next() {
            case .needMore:
                return
            case .failed(let error):
                close(.connectionLost("unreadable reply: \(error)"), backoff: true)
                return
            case .value(let value):
                guard pendingHead < pending.count else {
                    close(.connectionLost("a reply nobody asked for"), backoff: true)
                    return
                }
                let entry = pending[pendingHead]
                pendingHead += 1
                if pendingHead == pending.count {
                    pending.removeAll(keepingCapacity: true)
                    pendingHead = 0
                }
                backoff = 50
                entry.reply(.success(value))
                if case .error(let e) = value, Self.needsAnotherServer(e) {
                    // A failover in progress: this server cannot take writes; reconnect (and
                    // re-resolve) after the backoff.
                    close(.connectionLost(String(decoding: e.prefix(64), as: UTF8.self)), backoff: true)
                    return
                }
            }
        }
    }

    /// Errors that mean "ask another server": a demoted primary, a replica still loading.
    private static func needsAnotherServer(_ error: [UInt8]) -> Bool {
        ["READONLY", "LOADING", "MASTERDOWN"].contains { error.starts(with: Array($0.utf8)) }
    }

    private func event(_ events: Int16) {
        if events & Int16(BEV_EVENT_CONNECTED) != 0 {
            if let bev {
                let fd = Int32(bufferevent_getfd(bev))
                var one: Int32 = 1
                if fd >= 0 { setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size)) }
            }
            return
        }
        guard events & Int16(BEV_EVENT_EOF | BEV_EVENT_ERROR) != 0 else { return }
        var detail = events & Int16(BEV_EVENT_EOF) != 0 ? "closed by the server" : "connection failed"
        if events & Int16(BEV_EVENT_ERROR) != 0, let bev {
            let code = hg_errno()
            if code != 0 { detail = String(cString: strerror(code)) }
            let dnsError = bufferevent_socket_get_dns_error(bev)
            if dnsError != 0 { detail = "cannot resolve \(endpoint.host): " + String(cString: evutil_gai_strerror(dnsError)) }
            let tlsError = bufferevent_get_openssl_error(bev)
            if tlsError != 0 { detail = "TLS: " + TLSContext.describe(tlsError) }
        }
        close(.connectionLost(detail), backoff: true)
    }

    private func arm() {
        guard let deadlineTimer, pendingHead < pending.count else { return }
        let next = pending[pendingHead].deadline
        guard next < armedDeadline else { return }
        armedDeadline = next
        var tv = timeval(milliseconds: max(1, next - MonotonicClock.milliseconds()))
        event_add(deadlineTimer, &tv)
    }

    /// Replies come in order, so the oldest command decides: once it is overdue the connection
    /// cannot be trusted to answer the rest in time either.
    private func deadlinePassed() {
        armedDeadline = .max
        guard pendingHead < pending.count else { return }
        if MonotonicClock.milliseconds() >= pending[pendingHead].deadline {
            close(.timedOut, backoff: true)
        } else {
            arm()
        }
    }

    /// Drops the connection and fails every pending command (after the state is reset, so that
    /// a callback that sends again sees the backoff).
    private func close(_ failure: RedisFailure, backoff shouldBackOff: Bool) {
        if let bev { bufferevent_free(bev) }
        bev = nil
        reader = RESPReader()
        lastFailure = failure.description
        if shouldBackOff { startBackoff() }
        let failed = pending[pendingHead...]
        pending = []
        pendingHead = 0
        if let deadlineTimer { event_del(deadlineTimer) }
        armedDeadline = .max
        for entry in failed { entry.reply(.failure(failure)) }
    }

    private func startBackoff() {
        backoffUntil = MonotonicClock.milliseconds() + backoff
        backoff = min(backoff * 2, 2_000)
    }

    static func describe(_ value: RESPValue) -> String {
        switch value {
        case .error(let e): String(decoding: e.prefix(120), as: UTF8.self)
        case .simple(let s): String(decoding: s.prefix(120), as: UTF8.self)
        case .integer(let n): String(n)
        case .bulk(nil): "nil"
        case .bulk: "a bulk string"
        case .array: "an array"
        }
    }
}
