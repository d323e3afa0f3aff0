import CLibevent
import Foundation
import HookgateCore

/// Reads the PROXY protocol header at the start of an accepted connection (`listen.proxy_protocol`),
/// straight from the socket and before any bufferevent exists, so that not one byte past the header
/// is taken: what follows may be a TLS ClientHello that OpenSSL must read itself. Bytes are peeked,
/// and only those the parser says belong to the header are consumed. The whole header must arrive
/// within `client_timeout`; a connection without a valid one is closed without an answer.
///
/// Ownership: the worker's table of pending headers holds the reader; the read event gets it
/// unretained and is freed with it.
final class ProxyHeaderReader {
    unowned let worker: Worker
    let fd: Int32
    /// The socket's peer: the balancer, or its client for a `LOCAL`/`UNKNOWN` header.
    let peer: String
    private var received: [UInt8] = []
    private var event: OpaquePointer!
    private let deadline: Int64

    init(worker: Worker, fd: Int32, peer: String, timeoutMilliseconds: Int64) {
        self.worker = worker
        self.fd = fd
        self.peer = peer
        deadline = MonotonicClock.milliseconds() + timeoutMilliseconds
        event = event_new(worker.base, fd, Int16(EV_READ), { _, what, arg in
            Unmanaged<ProxyHeaderReader>.fromOpaque(arg!).takeUnretainedValue().fired(what)
        }, Unmanaged.passUnretained(self).toOpaque())
        waitForBytes()
    }

    deinit { event_free(event) }

    private func waitForBytes() {
        var remaining = timeval(milliseconds: max(0, deadline - MonotonicClock.milliseconds()))
        event_add(event, &remaining)
    }

    private func fired(_ what: Int16) {
        guard what & Int16(EV_TIMEOUT) == 0 else { return fail() }
        var peeked = [UInt8](repeating: 0, count: ProxyProtocolHeader.maximumBytes - received.count)
        let count = peeked.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_PEEK)) }
        if count < 0, hg_errno() == EAGAIN || hg_errno() == EINTR { return waitForBytes() }
        guard count > 0 else { return fail() }  // closed, or an error
        switch ProxyProtocolHeader.parse(received + peeked[0..<count]) {
        case .invalid:
            fail()
        case .needMore:
            guard consume(count) else { return fail() }
            waitForBytes()
        case .header(let length, let source):
            guard consume(length - received.count) else { return fail() }
            worker.proxyHeaderRead(self, client: source?.address ?? peer)
        }
    }

    /// Takes `count` bytes already seen by a peek off the socket.
    private func consume(_ count: Int) -> Bool {
        guard count > 0 else { return true }
        var bytes = [UInt8](repeating: 0, count: count)
        let taken = bytes.withUnsafeMutableBytes { recv(fd, $0.baseAddress, count, 0) }
        guard taken == count else { return false }
        received += bytes
        return true
    }

    private func fail() {
        event_del(event)
        worker.proxyHeaderFailed(self)
    }
}
