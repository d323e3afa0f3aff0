import CLibevent
import HookgateCore

/// The platform's subscription API as `hookgate subscribe` reaches it: one HTTPS request with a
/// bearer token, on a private libevent loop, with libevent's HTTP client over an OpenSSL
/// bufferevent (the same TLS code as the upstreams: SNI, peer and host name verified against the
/// system store or `--ca-file`). Chosen over URLSession so the binary needs no libcurl and
/// certificates are checked by one TLS stack.
public enum PlatformAPIClient {
    /// The API's answer: status and body (the body may hold a secret: never print it whole).
    public struct Answer: Sendable {
        public let status: Int
        public let body: [UInt8]
    }

    /// Why no answer came.
    public enum Failure: Error, CustomStringConvertible {
        case invalidURL(String)
        case tls(String)
        case noAnswer(String)
        case timedOut(seconds: Int)

        public var description: String {
            switch self {
            case .invalidURL(let why): return why
            case .tls(let why): return "TLS: \(why)"
            case .noAnswer(let why): return "no answer from the API: \(why)"
            case .timedOut(let s): return "no answer from the API within \(s)s"
            }
        }
    }

    static let maximumAnswerBytes = 1 << 20

    /// The three requests the commands make.
    public enum Method: Sendable {
        case get, post, delete
    }

    /// Sends one request and waits for its answer. `url` must be `https://`.
    public static func send(_ method: Method, url text: String, token: String, json: [UInt8]?, caFile: String?,
                            timeoutSeconds: Int) -> Result<Answer, Failure> {
        guard let url = UpstreamURL(parsing: text), url.scheme == .https else {
            return .failure(.invalidURL("expected an https:// URL, got \"\(text)\""))
        }
        _ = Libevent.initialize
        var settings = Configuration.Upstream(url: url)
        settings.caFile = caFile
        let context: TLSContext
        switch TLSContext.client(settings, key: "--ca-file") {
        case .success(let c): context = c
        case .failure(let problems): return .failure(.tls(problems.description))
        }
        guard let base = event_base_new() else { return .failure(.noAnswer("event_base_new failed")) }
        defer { event_base_free(base) }
        let dns = UpstreamResolver.make(base: base)
        defer { if let dns { evdns_base_free(dns, 0) } }
        guard let ssl = context.clientSession(host: url.host, verify: true),
              let bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                       Int32(BEV_OPT_CLOSE_ON_FREE.rawValue)) else {
            return .failure(.tls(TLSContext.lastError()))
        }
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1)
        // The connection owns the bufferevent from here and frees it with itself.
        guard let connection = evhttp_connection_base_bufferevent_new(base, dns, bev, url.host, url.port) else {
            bufferevent_free(bev)
            return .failure(.noAnswer("cannot open a connection"))
        }
        defer { evhttp_connection_free(connection) }
        evhttp_connection_set_timeout(connection, Int32(timeoutSeconds))
        evhttp_connection_set_retries(connection, 0)
        // A subscription answer is a few hundred bytes; anything far larger is not one.
        evhttp_connection_set_max_body_size(connection, Self.maximumAnswerBytes)
        evhttp_connection_set_max_headers_size(connection, Self.maximumAnswerBytes)

        let exchange = Exchange(base: base)
        // Ownership: the request callback's argument is `exchange`, unretained; it lives on this
        // stack frame until the loop has ended.
        guard let request = evhttp_request_new({ request, arg in
            Unmanaged<Exchange>.fromOpaque(arg!).takeUnretainedValue().finished(request)
        }, Unmanaged.passUnretained(exchange).toOpaque()) else {
            return .failure(.noAnswer("cannot make a request"))
        }
        evhttp_request_set_error_cb(request) { error, arg in
            Unmanaged<Exchange>.fromOpaque(arg!).takeUnretainedValue().error = error
        }
        let headers = evhttp_request_get_output_headers(request)
        evhttp_add_header(headers, "Host", url.authority)
        evhttp_add_header(headers, "Authorization", "Bearer " + token)
        evhttp_add_header(headers, "Accept", "application/json")
        evhttp_add_header(headers, "User-Agent", "hookgate")
        evhttp_add_header(headers, "Connection", "close")
        if let json {
            evhttp_add_header(headers, "Content-Type", "application/json")
            _ = json.withUnsafeBytes { evbuffer_add(evhttp_request_get_output_buffer(request), $0.baseAddress, $0.count) }
        }
        let kind: evhttp_cmd_type = switch method {
        case .get: EVHTTP_REQ_GET
        case .post: EVHTTP_REQ_POST
        case .delete: EVHTTP_REQ_DELETE
        }
        guard evhttp_make_request(connection, request, kind, url.target) == 0 else {
            return .failure(.noAnswer("cannot send the request"))
        }
        // The connection's timeout bounds each read and write; this bounds the whole exchange
        // (an API that trickles its answer byte by byte).
        var deadline = timeval(milliseconds: Int64(timeoutSeconds) * 1000)
        event_base_loopexit(base, &deadline)
        event_base_dispatch(base)
        if let answer = exchange.answer { return .success(answer) }
        if exchange.error == EVREQ_HTTP_TIMEOUT || !exchange.done { return .failure(.timedOut(seconds: timeoutSeconds)) }
        let tlsError = bufferevent_get_openssl_error(bev)
        if tlsError != 0 { return .failure(.tls(TLSContext.describe(tlsError))) }
        return .failure(.noAnswer(exchange.error == EVREQ_HTTP_EOF ? "the connection closed" : "connection failed"))
    }

    /// What the request's callbacks learn.
    private final class Exchange {
        let base: OpaquePointer
        var answer: Answer?
        var error: evhttp_request_error?
        /// The request ended (answered or failed) before the deadline.
        var done = false

        init(base: OpaquePointer) { self.base = base }

        /// Called once, with an answer or after an error; ends the loop (the resolver keeps
        /// events of its own, so the loop would not end by itself).
        func finished(_ request: OpaquePointer?) {
            done = true
            event_base_loopexit(base, nil)
            guard let request, evhttp_request_get_response_code(request) != 0 else { return }
            let input = evhttp_request_get_input_buffer(request)
            let length = evbuffer_get_length(input)
            var body = [UInt8](repeating: 0, count: length)
            if length > 0 { _ = body.withUnsafeMutableBytes { evbuffer_copyout(input, $0.baseAddress, length) } }
            answer = Answer(status: Int(evhttp_request_get_response_code(request)), body: body)
        }
    }
}
