import Foundation
import Testing
@testable import HookgateCore

@Suite("Rejections")
struct RejectionTests {
    /// Every reason's status; 5xx and 429 make the sender retry, other 4xx make it give up.
    static let statuses: [Reason: Int] = [
        .malformedRequest: 400, .headersTooLarge: 431, .httpVersionNotSupported: 505,
        .unsupportedTransferEncoding: 501, .expectationFailed: 417, .requestTimeout: 408,
        .routeNotFound: 404, .methodNotAllowed: 405, .bodyTooLarge: 413,
        .timestampMissing: 401, .timestampInvalid: 401, .timestampOutsideWindow: 401,
        .signatureMissing: 401, .signatureMalformed: 401, .signatureMismatch: 401,
        .envelopeInvalid: 400, .eventIDMismatch: 400, .eventTypeMismatch: 400,
        .duplicate: 200, .inFlight: 503, .upstreamUnreachable: 502, .upstreamTimeout: 504,
        .upstreamInvalidResponse: 502, .upstreamBusy: 503, .shuttingDown: 503, .ledgerUnavailable: 503,
        .filtered: 200, .destinationFailed: 503, .destinationRefused: 400, .spooled: 202,
    ]

    @Test func everyReasonHasAnExpectedStatus() {
        #expect(Set(Reason.allCases) == Set(Self.statuses.keys), "the table covers every reason")
    }

    @Test(arguments: Reason.allCases)
    func status(_ reason: Reason) {
        #expect(reason.status == Self.statuses[reason])
        #expect(Rejection(reason, "m").status == reason.status)
    }

    @Test(arguments: Reason.allCases)
    func retryAfter(_ reason: Reason) {
        let expected: Int? = switch reason {
        case .inFlight, .upstreamBusy, .ledgerUnavailable, .destinationFailed: 1
        case .shuttingDown: 5
        default: nil
        }
        #expect(reason.retryAfterSeconds == expected)
        if reason.retryAfterSeconds != nil { #expect(reason.status == 503) }
    }

    @Test func reasonCodesAreStableSnakeCase() {
        #expect(Reason.timestampOutsideWindow.rawValue == "timestamp_outside_window")
        #expect(Reason.eventIDMismatch.rawValue == "event_id_mismatch")
        for reason in Reason.allCases {
            #expect(reason.rawValue.allSatisfy { $0.isLowercase || $0 == "_" }, "\(reason.rawValue)")
        }
        #expect(Set(Reason.allCases.map(\.rawValue)).count == Reason.allCases.count)
    }

    @Test(arguments: [
        "plain message",
        "",
        #"quote " and backslash \ and slash /"#,
        "newline\n carriage\r tab\t",
        "controls \u{0} \u{1} \u{8} \u{C} \u{1B} \u{1F} \u{7F}",
        "line separators \u{2028} \u{2029}",
        "non-ASCII é € 😀",
        #"looks like JSON: {"error":"x"}"#,
    ])
    func jsonBodyIsValidJSON(_ message: String) throws {
        let rejection = Rejection(.signatureMismatch, message)
        let data = Data(rejection.jsonBody.utf8)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: String])
        #expect(object == ["error": "signature_mismatch", "message": message])
        #expect(!rejection.jsonBody.utf8.contains { $0 < 0x20 }, "no raw control characters")
    }

    @Test(arguments: [
        ("a", #""a""#),
        ("\"", #""\"""#),
        ("\\", #""\\""#),
        ("\n\r\t", #""\n\r\t""#),
        ("\u{0}", #""\u0000""#),
        ("\u{1F}", #""\u001f""#),
        ("\u{7F}", #""\u007f""#),
        ("\u{2028}", #""\u2028""#),
        ("é", "\"é\""),
    ] as [(String, String)])
    func quoted(_ text: String, _ json: String) {
        #expect(JSONText.quoted(text) == json)
    }

    @Test func jsonBodyShape() {
        #expect(Rejection(.routeNotFound, "no route for /x").jsonBody == #"{"error":"route_not_found","message":"no route for /x"}"#)
    }
}
