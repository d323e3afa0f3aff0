import CLibevent
import HookgateCore
import Logging

/// How a request ended, for the access log and metrics.
enum Outcome: String {
    case forwarded, duplicate, rejected
    /// No destination of the route wanted the event.
    case filtered
    /// The forward failed on one of the sender's last attempts and the spool holds the event.
    case spooled

    var ordinal: Int {
        switch self {
        case .forwarded: return 0
        case .duplicate: return 1
        case .rejected: return 2
        case .filtered: return 3
        case .spooled: return 4
        }
    }
}

/// One inbound request from arrival to its single answer. Every answer goes through `send`,
/// the only place that writes a response, so a request is answered exactly once.
final class InboundExchange {
    let connection: InboundConnection
    let head: HTTPRequestHead?
    let headers: HeaderList
    unowned let worker: Worker
    let runtime: RuntimeConfiguration
    let startedMicroseconds: Int64
    let requestID: String
    /// The client as the access log names it: the peer, or what a trusted proxy says.
    let client: String
    /// The peer is in `trusted_proxies`.
    let peerTrusted: Bool
    var route: CompiledRoute?
    var event: AdmittedEvent?
    /// What went wrong with the upstream, for the access log only (never for the sender).
    var upstreamError: String?
    /// The one destination of a `destinations:` route that the event went to (access log).
    var destination: String?
    private var answered = false

    /// `head` is nil when the request could not be parsed.
    init(connection: InboundConnection, head: HTTPRequestHead?, worker: Worker, runtime: RuntimeConfiguration,
         generatedID: () -> String) {
        self.connection = connection
        self.head = head
        headers = head?.headers ?? HeaderList.empty
        self.worker = worker
        self.runtime = runtime
        startedMicroseconds = MonotonicClock.microseconds()
        if case .one(let sent) = headers.value(named: "X-Request-Id"), HeaderPolicy.isAcceptableRequestID(sent) {
            requestID = sent
        } else {
            requestID = generatedID()
        }
        (client, peerTrusted) = ClientAddress.resolve(peer: connection.clientAddress, headers: headers,
                                                      trusted: runtime.configuration.trustedProxies)
    }

    /// The sender's `X-VECU-Retry-Count` (0 for the first attempt; 0 when absent or not plain
    /// decimal digits, so that a malformed header can never unlock last-attempt behaviour).
    var retryCount: Int {
        guard case .one(let text) = headers.value(named: "X-VECU-Retry-Count"), !text.isEmpty, text.utf8.count <= 4,
              text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return 0 }
        return Int(text) ?? 0
    }

    /// The request body, in the connection's buffer until it is forwarded.
    var body: OpaquePointer { connection.body }

    /// hookgate's own error answer: `{"error": reason, "message": ...}`.
    func reject(_ rejection: Rejection, closeConnection: Bool = false, upstreamStatus: Int? = nil) {
        var extra: [(String, String)] = []
        if rejection.reason == .methodNotAllowed { extra.append(("Allow", "POST")) }
        if let seconds = rejection.reason.retryAfterSeconds { extra.append(("Retry-After", String(seconds))) }
        let outcome: Outcome
        switch rejection.reason {
        case .inFlight: outcome = .duplicate
        case .upstreamUnreachable, .upstreamTimeout, .upstreamInvalidResponse: outcome = .forwarded
        default: outcome = .rejected
        }
        sendOwn(status: rejection.status, body: rejection.jsonBody, headers: extra, close: closeConnection, outcome: outcome,
                reason: rejection.reason, upstreamStatus: upstreamStatus)
    }

    /// The answer to an event that was already delivered.
    func answerDuplicate() {
        sendOwn(status: DuplicateAnswer.status, body: DuplicateAnswer.body, headers: [DuplicateAnswer.header], close: false,
                outcome: .duplicate, reason: .duplicate, upstreamStatus: nil)
    }

    /// The answer to an event the spool now holds on disk: 202 `{"spooled":true}`.
    func answerSpooled(upstreamStatus: Int?) {
        sendOwn(status: SpooledAnswer.status, body: SpooledAnswer.body, headers: [SpooledAnswer.header], close: false,
                outcome: .spooled, reason: .spooled, upstreamStatus: upstreamStatus)
    }

    /// The answer to a copy that waited for another copy's forward.
    func answerAsWaiter(firstCopyDelivered: Bool) {
        if let answer = SenderAnswer.forWaiter(firstCopyDelivered: firstCopyDelivered), case .reject(let rejection) = answer {
            reject(rejection)
        } else {
            answerDuplicate()
        }
    }

    /// hookgate's answer for a route with several destinations (`FanOutAnswer`): never an
    /// upstream's body or error detail.
    func answerFanOut(_ answer: FanOutAnswer) {
        var outcome: Outcome
        var reason: Reason?
        if answer.destinations.isEmpty {
            (outcome, reason) = (.filtered, .filtered)
        } else if answer.error == "destination_failed" {
            (outcome, reason) = (.forwarded, .destinationFailed)
        } else if answer.error != nil {
            (outcome, reason) = (.forwarded, .destinationRefused)
        } else {
            outcome = answer.destinations.allSatisfy { $0.result == .duplicate } ? .duplicate : .forwarded
            reason = outcome == .duplicate ? .duplicate : nil
        }
        var extra = answer.retryAfter.map { [("Retry-After", String($0))] } ?? []
        if answer.isSpooled {
            (outcome, reason) = (.spooled, .spooled)
            extra.append(SpooledAnswer.header)
        }
        sendOwn(status: answer.status, body: answer.jsonBody, headers: extra, close: false, outcome: outcome, reason: reason,
                upstreamStatus: nil)
    }

    /// Relays the upstream's status, end-to-end headers and body (moved, not copied).
    func relay(status: Int, reply: UpstreamReply) {
        var head = HeadWriter(status: status)
        let relayed = reply.head.headers
        for i in 0..<relayed.count {
            if relayed.withFieldBytes(i, { name, _ in HeaderPolicy.isDroppedWhenForwarding(name) })
                || relayed.nameIs(i, "x-request-id") || relayed.nameIs(i, "date") { continue }
            head.add(field: i, of: relayed)
        }
        send(head, status: status, body: reply.body, close: false, outcome: .forwarded, reason: nil, upstreamStatus: status)
    }

    private func sendOwn(status: Int, body: String, headers: [(String, String)], close: Bool, outcome: Outcome, reason: Reason?,
                         upstreamStatus: Int?) {
        let buffer = evbuffer_new()!
        defer { evbuffer_free(buffer) }
        body.withUTF8Bytes { _ = evbuffer_add(buffer, $0.baseAddress, $0.count) }
        var head = HeadWriter(status: status)
        head.add("Content-Type", "application/json")
        head.add(contentsOf: headers)
        send(head, status: status, body: buffer, close: close, outcome: outcome, reason: reason, upstreamStatus: upstreamStatus)
    }

    /// `head` holds the status line and the answer's own fields.
    private func send(_ head: consuming HeadWriter, status: Int, body: OpaquePointer, close: Bool, outcome: Outcome,
                      reason: Reason?, upstreamStatus: Int?) {
        precondition(!answered, "a request was answered twice")
        answered = true
        var head = head
        head.add("X-Request-Id", requestID)
        connection.respond(head: head, body: body, keepAlive: !close && !worker.gateway.isDraining)
        worker.gateway.recordAnswer(self, status: status, outcome: outcome, reason: reason, upstreamStatus: upstreamStatus,
                                    client: client)
    }
}
