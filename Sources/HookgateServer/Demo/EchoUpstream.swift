import CLibevent
import Foundation

/// The demo's stand-in application: answers every request 200 with a JSON summary of what it
/// received (never the body), on its own thread and event loop.
public final class EchoUpstream {
    private let base: OpaquePointer
    private let http: OpaquePointer
    public private(set) var port: UInt16 = 0
    private let done = DispatchSemaphore(value: 0)
    public private(set) var received: [String] = []
    private let lock = NSLock()

    public init() throws {
        _ = Libevent.initialize
        base = event_base_new()
        http = evhttp_new(base)
        let fd = try ListeningSocket.open(.init(host: "127.0.0.1", port: 0), reusePort: false)
        evhttp_accept_socket_with_handle(http, fd)
        port = try ListeningSocket.port(of: fd)
        evhttp_set_gencb(http, { request, arg in
            let echo = Unmanaged<EchoUpstream>.fromOpaque(arg!).takeUnretainedValue()
            let headers = EvHeaders(list: evhttp_request_get_input_headers(request!))
            let eventID: String = if case .one(let v) = headers.value(named: "X-Hookgate-Event-Id") { v } else { "?" }
            echo.lock.lock()
            echo.received.append(eventID)
            echo.lock.unlock()
            let out = evbuffer_new()!
            let body = "{\"received\":true,\"event_id\":\"\(eventID)\"}"
            _ = body.withCString { evbuffer_add(out, $0, strlen($0)) }
            evhttp_add_header(evhttp_request_get_output_headers(request!), "Content-Type", "application/json")
            evhttp_send_reply(request!, 200, "OK", out)
            evbuffer_free(out)
        }, Unmanaged.passUnretained(self).toOpaque())
        nonisolated(unsafe) let loop = base  // used only by the thread started here
        let thread = Thread { [done] in
            event_base_loop(loop, EVLOOP_NO_EXIT_ON_EMPTY)
            done.signal()
        }
        thread.start()
    }

    public func stop() {
        event_base_loopexit(base, nil)
        done.wait()
        evhttp_free(http)
        event_base_free(base)
    }

    public var receivedEventIDs: [String] {
        lock.lock()
        defer { lock.unlock() }
        return received
    }
}
