import Testing
@testable import HookgateCore

/// The admission stages in order: method, signature on the raw bytes, envelope, header consistency.

/// A request to admit, and the reason it should be refused (nil: admitted).
struct AdmissionCase: Sendable, CustomTestStringConvertible {
    var testDescription: String
    var method = "POST"
    var headers: [(String, String)]
    var body: [UInt8] = sampleBody
    var expected: Reason?
    /// Whether the envelope may be read (only once the signature has passed).
    var readsBody: Bool
}

private let invalidJSON = Array(#"{"id":"evt-1","#.utf8)

private let admissionCases: [AdmissionCase] = [
    .init(testDescription: "signed, no event headers", headers: vecuHeaders(), expected: nil, readsBody: true),
    .init(testDescription: "signed, matching event headers",
          headers: vecuHeaders(extra: [("X-VECU-Event-ID", "evt-1"), ("X-VECU-Event-Type", "custody.vehicle.released"),
                                       ("X-VECU-Retry-Count", "0")]),
          expected: nil, readsBody: true),
    .init(testDescription: "event header names in lower case",
          headers: vecuHeaders(extra: [("x-vecu-event-id", "evt-1"), ("x-vecu-event-type", "custody.vehicle.released")]),
          expected: nil, readsBody: true),
    .init(testDescription: "GET", method: "GET", headers: vecuHeaders(), expected: .methodNotAllowed, readsBody: false),
    .init(testDescription: "PUT", method: "PUT", headers: vecuHeaders(), expected: .methodNotAllowed, readsBody: false),
    .init(testDescription: "lower-case post", method: "post", headers: vecuHeaders(), expected: .methodNotAllowed, readsBody: false),
    .init(testDescription: "GET without any headers", method: "GET", headers: [], expected: .methodNotAllowed, readsBody: false),
    .init(testDescription: "bad signature", headers: vecuHeaders(secret: rotatedSecret), expected: .signatureMismatch, readsBody: false),
    .init(testDescription: "bad signature over invalid JSON", headers: vecuHeaders(secret: rotatedSecret), body: invalidJSON,
          expected: .signatureMismatch, readsBody: false),
    .init(testDescription: "tampered body", headers: vecuHeaders(), body: sampleBody + [0x20], expected: .signatureMismatch,
          readsBody: false),
    .init(testDescription: "missing signature", headers: [("X-VECU-Timestamp", "\(fixedNow)")], expected: .signatureMissing,
          readsBody: false),
    .init(testDescription: "missing timestamp", headers: [], expected: .timestampMissing, readsBody: false),
    .init(testDescription: "stale timestamp", headers: vecuHeaders(timestamp: fixedNow - 301), expected: .timestampOutsideWindow,
          readsBody: false),
    .init(testDescription: "signed invalid JSON", headers: vecuHeaders(body: invalidJSON), body: invalidJSON,
          expected: .envelopeInvalid, readsBody: true),
    .init(testDescription: "Event-ID differs from the body",
          headers: vecuHeaders(extra: [("X-VECU-Event-ID", "evt-2")]), expected: .eventIDMismatch, readsBody: true),
    .init(testDescription: "Event-ID differs only in case",
          headers: vecuHeaders(extra: [("X-VECU-Event-ID", "EVT-1")]), expected: .eventIDMismatch, readsBody: true),
    .init(testDescription: "Event-ID empty",
          headers: vecuHeaders(extra: [("X-VECU-Event-ID", "")]), expected: .eventIDMismatch, readsBody: true),
    .init(testDescription: "Event-ID repeated, both matching",
          headers: vecuHeaders(extra: [("X-VECU-Event-ID", "evt-1"), ("x-vecu-event-id", "evt-1")]),
          expected: .eventIDMismatch, readsBody: true),
    .init(testDescription: "Event-Type differs from the body",
          headers: vecuHeaders(extra: [("X-VECU-Event-ID", "evt-1"), ("X-VECU-Event-Type", "credential.revoked")]),
          expected: .eventTypeMismatch, readsBody: true),
    .init(testDescription: "Event-Type repeated",
          headers: vecuHeaders(extra: [("X-VECU-Event-Type", "custody.vehicle.released"), ("X-VECU-Event-Type", "custody.vehicle.released")]),
          expected: .eventTypeMismatch, readsBody: true),
]

/// A signed body whose `id` and `type` are the given strings, with headers carrying other
/// spellings: canonically equivalent (Swift `==` says equal) but different bytes, so a different
/// event.
private func lookAlikeCase(_ label: String, bodyID: String = "evt-1", bodyType: String = "custody.vehicle.released",
                           headerID: String? = nil, headerType: String? = nil, expected: Reason?) -> AdmissionCase {
    let body = Array(#"{"id":"\#(bodyID)","source":"vecu.custody-service","type":"\#(bodyType)","specversion":"1.0"}"#.utf8)
    var extra: [(String, String)] = []
    if let headerID { extra.append(("X-VECU-Event-ID", headerID)) }
    if let headerType { extra.append(("X-VECU-Event-Type", headerType)) }
    return AdmissionCase(testDescription: label, headers: vecuHeaders(body: body, extra: extra), body: body,
                         expected: expected, readsBody: true)
}

private let lookAlikeCases: [AdmissionCase] = [
    lookAlikeCase("Event-ID NFD, body NFC", bodyID: "caf\u{E9}-1", headerID: "cafe\u{301}-1", expected: .eventIDMismatch),
    lookAlikeCase("Event-ID NFC, body NFD", bodyID: "cafe\u{301}-1", headerID: "caf\u{E9}-1", expected: .eventIDMismatch),
    lookAlikeCase("Event-ID KELVIN SIGN, body K", bodyID: "K-1", headerID: "\u{212A}-1", expected: .eventIDMismatch),
    lookAlikeCase("Event-ID ANGSTROM SIGN, body Å", bodyID: "\u{C5}-1", headerID: "\u{212B}-1", expected: .eventIDMismatch),
    lookAlikeCase("Event-Type NFD, body NFC", bodyType: "caf\u{E9}.created", headerID: "evt-1",
                  headerType: "cafe\u{301}.created", expected: .eventTypeMismatch),
    lookAlikeCase("Event-Type KELVIN SIGN, body K", bodyType: "K.created", headerType: "\u{212A}.created",
                  expected: .eventTypeMismatch),
    lookAlikeCase("Event-ID and -Type byte for byte (NFD)", bodyID: "cafe\u{301}-1", bodyType: "cafe\u{301}.created",
                  headerID: "cafe\u{301}-1", headerType: "cafe\u{301}.created", expected: nil),
]

@Suite("Event admission")
struct EventAdmissionTests {
    let admission = EventAdmission(scheme: VecuSignatureScheme(secrets: [vecuSecret], toleranceSeconds: 300))

    @Test(arguments: admissionCases)
    func admit(_ c: AdmissionCase) {
        var reads = 0
        let result = c.body.withUnsafeBytes { raw in
            admission.admit(
                method: c.method,
                headers: HeaderList(c.headers),
                body: SegmentedBody(c.body, cutAt: c.body.count > 10 ? [10] : []),
                contiguousBody: {
                    reads += 1
                    return raw
                },
                now: fixedNow
            )
        }
        switch result {
        case .success(let event):
            #expect(c.expected == nil, "admitted")
            #expect(event == AdmittedEvent(id: "evt-1", type: "custody.vehicle.released", source: "vecu.custody-service",
                                           verifiedBy: "hmac-sha256"))
        case .failure(let rejection):
            #expect(rejection.reason == c.expected)
        }
        #expect(reads == (c.readsBody ? 1 : 0), "contiguousBody called \(reads) times")
    }

    /// The headers must equal the body's `id` / `type` byte for byte.
    @Test(arguments: lookAlikeCases)
    func lookAlikeHeaders(_ c: AdmissionCase) {
        let result = c.body.withUnsafeBytes { raw in
            admission.admit(method: c.method, headers: HeaderList(c.headers), body: c.body, contiguousBody: { raw }, now: fixedNow)
        }
        switch result {
        case .success: #expect(c.expected == nil, "admitted")
        case .failure(let rejection): #expect(rejection.reason == c.expected)
        }
    }
}
