import Testing
@testable import HookgateCore

/// What the sender is told for each upstream outcome, and whether the event counts as delivered.
@Suite("Upstream answer policy")
struct UpstreamAnswerPolicyTests {
    /// (status, relayed, delivered): relayed statuses reach the sender as they are.
    @Test(arguments: [
        (200, true, true), (201, true, true), (202, true, true), (204, true, true), (299, true, true),
        (400, true, false), (401, true, false), (404, true, false), (409, true, false), (422, true, false),
        (429, true, false), (500, true, false), (502, true, false), (503, true, false), (504, true, false), (599, true, false),
        (100, false, false), (199, false, false), (300, false, false), (301, false, false), (304, false, false),
        (399, false, false), (600, false, false), (0, false, false), (-1, false, false),
    ] as [(Int, Bool, Bool)])
    func status(_ status: Int, _ relayed: Bool, _ delivered: Bool) throws {
        let answer = SenderAnswer.forOutcome(.response(status: status))
        if relayed {
            #expect(answer == .relay(status: status, delivered: delivered))
        } else {
            guard case .reject(let rejection) = answer else {
                Issue.record("relayed \(status): \(answer)")
                return
            }
            #expect(rejection.reason == .upstreamInvalidResponse)
            #expect(rejection.status == 502, "a retriable answer keeps the event safe")
            #expect(!rejection.message.contains("\(status)"), "the sender gets a fixed message")
            #expect(UpstreamOutcome.response(status: status).errorDetail?.contains("\(status)") == true, "the log gets the status")
        }
        if relayed { #expect(UpstreamOutcome.response(status: status).errorDetail == nil) }
    }

    /// The sender retries on 5xx and 429 only; every non-acceptance hookgate answers itself must
    /// be retriable. The detail (hosts, addresses, TLS errors) goes to the log, never into the
    /// message the sender gets: that is one fixed text per reason.
    @Test(arguments: [
        (UpstreamOutcome.unreachable("Connection refused"), Reason.upstreamUnreachable, 502, "Connection refused"),
        (.unreachable("cannot resolve: nodename nor servname provided"), .upstreamUnreachable, 502, "cannot resolve"),
        (.unreachable("TLS: certificate verify failed"), .upstreamUnreachable, 502, "certificate verify failed"),
        (.timedOut, .upstreamTimeout, 504, nil),
        (.invalidResponse("header section too large"), .upstreamInvalidResponse, 502, "header section too large"),
        (.response(status: 302), .upstreamInvalidResponse, 502, "302"),
    ] as [(UpstreamOutcome, Reason, Int, String?)])
    func errorOutcome(_ outcome: UpstreamOutcome, _ reason: Reason, _ status: Int, _ detail: String?) {
        guard case .reject(let rejection) = SenderAnswer.forOutcome(outcome) else {
            Issue.record("not rejected: \(outcome)")
            return
        }
        #expect(rejection.reason == reason)
        #expect(rejection.status == status)
        #expect(rejection.status >= 500)
        if let detail {
            #expect(!rejection.jsonBody.contains(detail), "no detail for the sender")
            #expect(outcome.errorDetail?.contains(detail) == true, "the detail is for the log")
        } else {
            #expect(outcome.errorDetail == nil)
        }
    }

    /// One fixed message per reason, whatever the detail.
    @Test(arguments: [
        [UpstreamOutcome.unreachable("a"), .unreachable("Connection refused"), .unreachable("")],
        [.invalidResponse("x"), .invalidResponse("upstream switched protocols")],
        [.response(status: 100), .response(status: 302), .response(status: 600)],
    ])
    func messageIsFixedPerReason(_ outcomes: [UpstreamOutcome]) {
        let answers = Set(outcomes.map { outcome -> String in
            guard case .reject(let rejection) = SenderAnswer.forOutcome(outcome) else { return "relayed" }
            return rejection.jsonBody
        })
        #expect(answers.count == 1, "\(answers)")
    }

    @Test func waiterOfADeliveredCopyIsADuplicate() {
        #expect(SenderAnswer.forWaiter(firstCopyDelivered: true) == nil)
    }

    @Test func waiterOfAFailedCopyGetsARetriable503() throws {
        let answer = try #require(SenderAnswer.forWaiter(firstCopyDelivered: false))
        guard case .reject(let rejection) = answer else {
            Issue.record("waiter relayed: \(answer)")
            return
        }
        #expect(rejection.reason == .inFlight)
        #expect(rejection.status == 503)
        #expect(rejection.reason.retryAfterSeconds == 1)
    }

    @Test func duplicateAnswer() {
        #expect(DuplicateAnswer.status == 200)
        #expect(DuplicateAnswer.status == Reason.duplicate.status)
        #expect(DuplicateAnswer.body == #"{"duplicate":true}"#)
        #expect(DuplicateAnswer.header.name == "X-Hookgate-Duplicate")
        #expect(DuplicateAnswer.header.value == "true")
    }
}
