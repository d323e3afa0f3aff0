import CLibevent
import HookgateCore

/// A kept-alive connection to the upstream, carrying one request at a time, with hookgate's own
/// strict HTTP/1.1 response reader. A closed connection is never reconnected; the pool opens a new
/// one (an OpenSSL session cannot be reused across TCP connections anyway).
///
/// A connection that has finished an answer is parked before it carries another request: it
/// stays under a read handler that closes it on any byte or EOF (nothing is owed to us), and only
/// a later turn of the loop, after it has polled the socket, hands it back to the pool (`settled`).
/// Bytes that arrived with the end of an answer are then never read as the next request's answer.
///
/// Ownership: the pool holds idle and parked connections, a job holds its busy one; libevent
/// callbacks get it unretained and are gone once the bufferevent and the settle timer are freed
/// (`close`, `deinit`).
final class UpstreamConnection {
    private enum Phase {
        case idle
        case waitingHead
        case body(HTTPResponseHead, remaining: Int)
        case chunked(HTTPResponseHead, ChunkedBodyReader)
        case untilClose(HTTPResponseHead)
    }

    /// Largest upstream answer relayed; beyond it the answer is refused as invalid (502).
    static let maximumBody = 16 * 1024 * 1024
    static let maximumHead = 64 * 1024

    unowned let pool: UpstreamPool
    private let base: OpaquePointer
    private var bev: OpaquePointer?
    /// Fires on the loop turn after an answer completed (a zero timeout runs after that turn's
    /// poll and after the read callbacks it made ready), to hand the parked connection back.
    private var settleTimer: OpaquePointer?
    private var phase = Phase.idle
    private var job: ForwardJob?
    private let body: OpaquePointer = evbuffer_new()
    private(set) var closed = false
    private let isTLS: Bool
    /// The socket is connected (writes may go to it directly).
    private var connected = false

    init?(pool: UpstreamPool, base: OpaquePointer, dns: OpaquePointer?, url: UpstreamURL, tls: TLSContext?, verify: Bool) {
        self.pool = pool
        self.base = base
        isTLS = tls != nil
        let options = Int32(BEV_OPT_CLOSE_ON_FREE.rawValue)
        if let tls {
            guard let ssl = tls.clientSession(host: url.host, verify: verify),
                  let made = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, options) else { return nil }
            bufferevent_openssl_set_allow_dirty_shutdown(made, 1)
            bev = made
        } else {
            bev = bufferevent_socket_new(base, -1, options)
        }
        guard let bev else { return nil }
        let me = Unmanaged.passUnretained(self).toOpaque()
        bufferevent_setcb(bev, { _, arg in
            Unmanaged<UpstreamConnection>.fromOpaque(arg!).takeUnretainedValue().readable()
        }, nil, { _, events, arg in
            Unmanaged<UpstreamConnection>.fromOpaque(arg!).takeUnretainedValue().event(events)
        }, me)
        bufferevent_enable(bev, Int16(EV_READ | EV_WRITE))
        guard bufferevent_socket_connect_hostname(bev, dns, AF_UNSPEC, url.host, Int32(url.port)) == 0 else {
            bufferevent_free(bev)
            self.bev = nil
            return nil
        }
    }

    deinit {
        if let settleTimer { event_free(settleTimer) }
        if let bev { bufferevent_free(bev) }
        evbuffer_free(body)
    }

    /// Waits one loop turn with the idle read handler in place, then reports to the pool
    /// (`settled`), closed or not. Called by the pool, which holds the connection meanwhile.
    func park() {
        if settleTimer == nil {
            settleTimer = event_new(base, -1, 0, { _, _, arg in
                let connection = Unmanaged<UpstreamConnection>.fromOpaque(arg!).takeUnretainedValue()
                connection.pool.settled(connection)
            }, Unmanaged.passUnretained(self).toOpaque())
        }
        var now = timeval(tv_sec: 0, tv_usec: 0)
        event_add(settleTimer, &now)
    }

    /// Whether nothing at all is readable: no buffered input, no TLS record held by OpenSSL, and
    /// (one non-blocking peek) nothing in the socket, not even EOF. Checked before a parked
    /// connection is handed a queued request, closing the gap between the loop's poll and now.
    func hasNothingToRead() -> Bool {
        guard let bev else { return false }
        if evbuffer_get_length(bufferevent_get_input(bev)) > 0 { return false }
        if isTLS, let ssl = bufferevent_openssl_get_ssl(bev), SSL_has_pending(ssl) != 0 { return false }
        let fd = Int32(bufferevent_getfd(bev))
        guard fd >= 0 else { return false }
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT))
        return n < 0 && (hg_errno() == EAGAIN || hg_errno() == EWOULDBLOCK)
    }

    /// Sends `job`'s request: the rendered head, then the body moved out of its buffer.
    func send(_ job: ForwardJob) {
        guard let bev else {
            fail(.unreachable("connection closed"))
            return
        }
        self.job = job
        phase = .waitingHead
        _ = job.requestHead.withUnsafeBytes {
            SocketWrite.send(head: $0, body: job.body, on: bev, direct: connected && !isTLS)
        }
    }

    /// The forward ran out of time: the answer can no longer be trusted to arrive whole.
    func abort() {
        fail(.timedOut)
    }

    /// Drops the connection and its job without reporting (the worker is being torn down).
    func abandon() {
        job = nil
        close()
    }

    private func readable() {
        guard let bev else { return }
        let input = bufferevent_get_input(bev)!
        while true {
            switch phase {
            case .idle:
                // Nothing is owed to us: data here is a protocol error; close.
                if evbuffer_get_length(input) > 0 { close() }
                return
            case .waitingHead:
                let found = evbuffer_search(input, "\r\n\r\n", 4, nil)
                guard found.pos >= 0 else {
                    if evbuffer_get_length(input) > Self.maximumHead { fail(.invalidResponse("header section too large")) }
                    return
                }
                let length = found.pos + 4
                let parsed = HTTPResponseHead.parse(UnsafeRawBufferPointer(start: evbuffer_pullup(input, length), count: length))
                evbuffer_drain(input, length)
                switch parsed {
                case .failure(let rejection):
                    fail(.invalidResponse(rejection.message))
                    return
                case .success(let head) where head.status < 200:
                    if head.status == 101 {
                        fail(.invalidResponse("upstream switched protocols"))
                        return
                    }
                    continue  // an interim answer (100 Continue, 103): the real one follows
                case .success(let head):
                    switch head.framing {
                    case .length(let n) where n > Self.maximumBody:
                        fail(.invalidResponse("answer body of \(n) bytes is too large"))
                        return
                    case .length(let n):
                        phase = .body(head, remaining: n)
                    case .chunked:
                        phase = .chunked(head, ChunkedBodyReader(maximumBody: Self.maximumBody, maximumTrailer: Self.maximumHead))
                    case .untilClose:
                        phase = .untilClose(head)
                    }
                }
            case .body(let head, let remaining):
                let moved = min(remaining, evbuffer_get_length(input))
                if moved > 0 { evbuffer_remove_buffer(input, body, moved) }
                guard moved == remaining else {
                    phase = .body(head, remaining: remaining - moved)
                    return
                }
                complete(head)
                return
            case .chunked(let head, var reader):
                switch reader.read(from: input, into: body) {
                case .needMore:
                    phase = .chunked(head, reader)
                    return
                case .done:
                    complete(head)
                    return
                case .failed(let message, _):
                    fail(.invalidResponse(message))
                    return
                }
            case .untilClose:
                evbuffer_add_buffer(body, input)
                if evbuffer_get_length(body) > Self.maximumBody { fail(.invalidResponse("answer body too large")) }
                return
            }
        }
    }

    private func event(_ events: Int16) {
        if events & Int16(BEV_EVENT_CONNECTED) != 0 {
            connected = true
            if let bev { Self.disableNagle(bev) }
            return
        }
        if events & Int16(BEV_EVENT_EOF) != 0, case .untilClose(let head) = phase {
            complete(head)
            close()
            return
        }
        guard events & Int16(BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT) != 0 else { return }
        if job != nil {
            var detail = events & Int16(BEV_EVENT_EOF) != 0 ? "connection closed before a complete answer" : "connection failed"
            if events & Int16(BEV_EVENT_ERROR) != 0, let bev {
                let code = hg_errno()
                if code != 0 { detail = String(cString: strerror(code)) }
                let dnsError = bufferevent_socket_get_dns_error(bev)
                if dnsError != 0 { detail = "cannot resolve: " + String(cString: evutil_gai_strerror(dnsError)) }
                let tlsError = bufferevent_get_openssl_error(bev)
                if tlsError != 0 { detail = "TLS: " + TLSContext.describe(tlsError) }
            }
            fail(.unreachable(detail))
        } else {
            close()
        }
    }

    private func complete(_ head: HTTPResponseHead) {
        guard let job else { return }
        self.job = nil
        phase = .idle
        if !head.keepAlive || (bev.map { evbuffer_get_length(bufferevent_get_input($0)) } ?? 0) > 0 { close() }
        pool.finished(job, on: self, outcome: .response(status: head.status), reply: UpstreamReply(head: head, body: body))
        evbuffer_drain(body, evbuffer_get_length(body))
    }

    private func fail(_ outcome: UpstreamOutcome) {
        close()
        guard let job else { return }
        self.job = nil
        evbuffer_drain(body, evbuffer_get_length(body))
        pool.finished(job, on: self, outcome: outcome, reply: nil)
    }

    /// Frees the socket at once (libevent keeps the bufferevent alive until its running callback
    /// returns, so this is safe from inside one).
    func close() {
        closed = true
        phase = .idle
        if let bev {
            bufferevent_free(bev)
            self.bev = nil
        }
    }

    /// Requests go out as one write, but TLS splits it into records; without TCP_NODELAY the
    /// second waits for the peer's delayed ACK (40 ms on Linux).
    private static func disableNagle(_ bev: OpaquePointer) {
        let fd = Int32(bufferevent_getfd(bev))
        guard fd >= 0 else { return }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }
}
