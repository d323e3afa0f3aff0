import CLibevent
import Foundation
import HookgateCore

/// The operator's listener, separate from the webhook port and on its own thread and loop, so
/// that probes and scrapes neither wait behind webhook traffic nor are reachable from it:
/// `GET /healthz` (200 while the process runs), `GET /readyz` (200 once serving, 503 while
/// draining), `GET /metrics` (Prometheus text).
final class AdminServer {
    private let base: OpaquePointer
    private let http: OpaquePointer
    private unowned let gateway: Gateway
    private let done = DispatchSemaphore(value: 0)
    private(set) var port: UInt16 = 0

    init(listen: ListenAddress, gateway: Gateway) throws {
        _ = Libevent.initialize
        self.gateway = gateway
        base = event_base_new()
        http = evhttp_new(base)
        let fd = try ListeningSocket.open(listen, reusePort: false)
        guard evhttp_accept_socket_with_handle(http, fd) != nil else {
            close(fd)
            throw SystemError("cannot accept on admin address \(listen)")
        }
        port = try ListeningSocket.port(of: fd)
        var timeout = timeval(milliseconds: 10_000)
        evhttp_set_timeout_tv(http, &timeout)
        evhttp_set_max_body_size(http, 64 * 1024)
        // Every method reaches `handle`, so that the answer is JSON (405/404), never libevent's page.
        evhttp_set_allowed_methods(http, UInt16(EVHTTP_REQ_GET.rawValue | EVHTTP_REQ_POST.rawValue | EVHTTP_REQ_HEAD.rawValue
            | EVHTTP_REQ_PUT.rawValue | EVHTTP_REQ_DELETE.rawValue | EVHTTP_REQ_OPTIONS.rawValue
            | EVHTTP_REQ_TRACE.rawValue | EVHTTP_REQ_CONNECT.rawValue | EVHTTP_REQ_PATCH.rawValue))
        // Ownership: unretained; the gateway owns this server and stops its loop before freeing it.
        evhttp_set_gencb(http, { request, arg in
            Unmanaged<AdminServer>.fromOpaque(arg!).takeUnretainedValue().handle(request!)
        }, Unmanaged.passUnretained(self).toOpaque())
    }

    func start() {
        nonisolated(unsafe) let loop = base  // used only by the thread started here
        let thread = Thread { [done] in
            event_base_loop(loop, EVLOOP_NO_EXIT_ON_EMPTY)
            done.signal()
        }
        thread.name = "hookgate-admin"
        thread.start()
    }

    func stop() {
        event_base_loopexit(base, nil)
        done.wait()
        evhttp_free(http)
        event_base_free(base)
    }

    private func handle(_ request: OpaquePointer) {
        let uri = String(cString: evhttp_request_get_uri(request))
        let path = uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? uri
        let isRead = evhttp_request_get_command(request) == EVHTTP_REQ_GET || evhttp_request_get_command(request) == EVHTTP_REQ_HEAD
        switch (path, isRead) {
        case ("/healthz", true):
            reply(request, 200, "application/json", Array("{\"status\":\"ok\"}".utf8))
        case ("/readyz", true):
            if gateway.isReady {
                reply(request, 200, "application/json", Array("{\"status\":\"ready\"}".utf8))
            } else {
                reply(request, 503, "application/json", Array("{\"status\":\"not_ready\"}".utf8))
            }
        case ("/metrics", true):
            reply(request, 200, "text/plain; version=0.0.4; charset=utf-8", gateway.metricsExposition())
        case ("/healthz", false), ("/readyz", false), ("/metrics", false):
            evhttp_add_header(evhttp_request_get_output_headers(request), "Allow", "GET, HEAD")
            reply(request, 405, "application/json", Array("{\"error\":\"method_not_allowed\",\"message\":\"use GET\"}".utf8))
        default:
            reply(request, 404, "application/json", Array("{\"error\":\"not_found\",\"message\":\"admin paths: /healthz, /readyz, /metrics\"}".utf8))
        }
    }

    private func reply(_ request: OpaquePointer, _ status: Int32, _ contentType: String, _ body: [UInt8]) {
        let buffer = evbuffer_new()!
        defer { evbuffer_free(buffer) }
        body.withUnsafeBytes { _ = evbuffer_add(buffer, $0.baseAddress, $0.count) }
        evhttp_add_header(evhttp_request_get_output_headers(request), "Content-Type", contentType)
        evhttp_send_reply(request, status, nil, buffer)
    }
}
