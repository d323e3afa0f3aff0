import CLibevent
import HookgateCore
import Logging

/// How a request ended, for the access log and metrics.
enum Outcome: String {
    case forwarded, duplicate, rejected
}

/// One inbound request from arrival to its single answer. Every answer goes through `send`,
/// which is the only caller of `evhttp_send_reply`, so a request is answered exactly once.
final class InboundExchange {
    let request: OpaquePointer
    unowned let worker: Worker
    let runtime: RuntimeConfiguration
    let startedMicroseconds: Int64
    let requestID: String
    var route: CompiledRoute?
    var envelope: CloudEventEnvelope?
    private var answered = false

    init(request: OpaquePointer, worker: Worker, runtime: RuntimeConfiguration, generatedID: () -> String) {
        self.request = request
        self.worker = worker
        self.runtime = runtime
        startedMicroseconds = MonotonicClock.microseconds()
        if case .one(let sent) = EvHeaders(list: evhttp_request_get_input_headers(request)).value(named: "X-Request-Id"),
           HeaderPolicy.isAcceptableRequestID(sent) {
            requestID = sent
        } else {
            requestID = generatedID()
        }
    }

    var inputHeaders: EvHeaders { EvHeaders(list: evhttp_request_get_input_headers(request)) }
    var inputBody: OpaquePointer { evhttp_request_get_input_buffer(request) }

    /// The client's address as text, for X-Forwarded-For and the log.
    var clientAddress: String {
        guard let connection = evhttp_request_get_connection(request) else { return "unknown" }
        var address: UnsafeMutablePointer<CChar>?
        var port: UInt16 = 0
        evhttp_connection_get_peer(connection, &address, &port)
        return address.map { String(cString: $0) } ?? "unknown"
    }

    /// hookgate's own error answer: `{"error": reason, "message": ...}`.
    func reject(_ rejection: Rejection, closeConnection: Bool = false, upstreamStatus: Int? = nil) {
        var headers: [(String, String)] = []
        if rejection.reason == .methodNotAllowed { headers.append(("Allow", "POST")) }
        if let seconds = rejection.reason.retryAfterSeconds { headers.append(("Retry-After", String(seconds))) }
        if closeConnection { headers.append(("Connection", "close")) }
        let outcome: Outcome
        switch rejection.reason {
        case .inFlight: outcome = .duplicate
        case .upstreamUnreachable, .upstreamTimeout, .upstreamInvalidResponse: outcome = .forwarded
        default: outcome = .rejected
        }
        sendOwn(status: rejection.status, body: rejection.jsonBody, headers: headers, outcome: outcome,
                reason: rejection.reason.rawValue, upstreamStatus: upstreamStatus)
    }

    /// The answer to an event that was already delivered.
    func answerDuplicate() {
        sendOwn(status: DuplicateAnswer.status, body: DuplicateAnswer.body,
                headers: [DuplicateAnswer.header], outcome: .duplicate, reason: Reason.duplicate.rawValue, upstreamStatus: nil)
    }

    /// The answer to a copy that waited for another copy's forward.
    func answerAsWaiter(firstCopyDelivered: Bool) {
        if let answer = SenderAnswer.forWaiter(firstCopyDelivered: firstCopyDelivered), case .reject(let rejection) = answer {
            reject(rejection)
        } else {
            answerDuplicate()
        }
    }

    /// Relays the upstream's status, end-to-end headers and body (moved, not copied).
    func relay(status: Int, upstreamResponse: OpaquePointer) {
        let out = EvHeaders(list: evhttp_request_get_output_headers(request))
        for (name, value) in EvHeaders(list: evhttp_request_get_input_headers(upstreamResponse)).pairs
        where !HeaderPolicy.isDroppedWhenForwarding(name) && name.lowercased() != "x-request-id" {
            out.add(name, value)
        }
        send(status: status, body: evhttp_request_get_input_buffer(upstreamResponse), headers: [],
             outcome: .forwarded, reason: nil, upstreamStatus: status)
    }

    private func sendOwn(status: Int, body: String, headers: [(String, String)], outcome: Outcome, reason: String, upstreamStatus: Int?) {
        let buffer = evbuffer_new()!
        defer { evbuffer_free(buffer) }
        var text = body
        text.withUTF8 { _ = evbuffer_add(buffer, $0.baseAddress, $0.count) }
        send(status: status, body: buffer, headers: [("Content-Type", "application/json")] + headers,
             outcome: outcome, reason: reason, upstreamStatus: upstreamStatus)
    }

    private func send(status: Int, body: OpaquePointer, headers: [(String, String)], outcome: Outcome, reason: String?, upstreamStatus: Int?) {
        precondition(!answered, "a request was answered twice")
        answered = true
        let out = EvHeaders(list: evhttp_request_get_output_headers(request))
        for (name, value) in headers { out.add(name, value) }
        out.add("X-Request-Id", requestID)
        let client = clientAddress
        evhttp_send_reply(request, Int32(status), nil, body)
        worker.gateway.recordAnswer(self, status: status, outcome: outcome, reason: reason, upstreamStatus: upstreamStatus, client: client)
    }
}
