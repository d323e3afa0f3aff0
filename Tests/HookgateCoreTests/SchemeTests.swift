import Testing
@testable import HookgateCore

/// The schemes beside `vecu`: providers' documented vectors, then a table per scheme of good,
/// tampered, rotated, stale and malformed requests, the header parsers on hostile input, and
/// where each route's event id comes from.
private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

private let swSecretText = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
private let swSecret = StandardWebhooksSignatureScheme.decodeSecret(bytes(swSecretText))!
private let swOther = bytes("second-standard-webhooks-key-32b")
private let stripeSecret = bytes("whsec_test_0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d")
private let otherSecret = bytes("another-secret-for-rotation-0001")

@Suite("Provider test vectors")
struct ProviderVectorTests {
    @Test func gitHubDocumentedVector() {
        // docs.github.com "Validating webhook deliveries": the 26-byte secret and its signature.
        let scheme = GitHubSignatureScheme(secrets: [bytes("It's a Secret to Everybody")])
        let headers = HeaderList([("X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")])
        #expect(scheme.verify(headers: headers, body: bytes("Hello, World!"), now: 0) == nil)
        #expect(GitHubSignatureScheme.sign(secret: bytes("It's a Secret to Everybody"), body: bytes("Hello, World!"))
                == "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
    }

    @Test func slackDocumentedExample() {
        // api.slack.com "Verifying requests from Slack": the slash-command example.
        let body = bytes("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
        let scheme = SlackSignatureScheme(secrets: [bytes("8f742231b10e8888abcd99yyyzzz85a5")], toleranceSeconds: 300)
        let headers = HeaderList([("X-Slack-Request-Timestamp", "1531420618"),
                                  ("X-Slack-Signature", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503")])
        #expect(scheme.verify(headers: headers, body: body, now: 1_531_420_618) == nil)
        #expect(scheme.verify(headers: headers, body: body, now: 1_531_420_618 + 301)?.reason == .timestampOutsideWindow)
    }

    @Test func standardWebhooksLibraryVector() {
        // standardwebhooks 1.1.0 (Python): Webhook(secret).sign("msg_1", 1700000000, '{"a":1}').
        let scheme = StandardWebhooksSignatureScheme(secrets: [swSecret], toleranceSeconds: 300)
        let headers = HeaderList([("webhook-id", "msg_1"), ("webhook-timestamp", "1700000000"),
                                  ("webhook-signature", "v1,hVsFLpmw4Ib/Xm0eZLt3KqYBZdt0U8gdGeuz0EsGv78=")])
        #expect(scheme.verify(headers: headers, body: bytes(#"{"a":1}"#), now: 1_700_000_000) == nil)
        #expect(swSecret.count == 24)
    }

    @Test func stripeLibraryVector() {
        // stripe 16.1.0 (Python): WebhookSignature.generate_signature_header(body, secret, 1700000000).
        let scheme = StripeSignatureScheme(secrets: [stripeSecret], toleranceSeconds: 300)
        let headers = HeaderList([("Stripe-Signature", "t=1700000000,v1=0277911005d84a133ad4f3d78b7138b79dcf12ed354041c02493ccd64d0ee651")])
        #expect(scheme.verify(headers: headers, body: bytes(#"{"id":"evt_1","object":"event"}"#), now: 1_700_000_000) == nil)
    }
}

/// One request to one scheme and the expected reason (nil: accepted).
struct SchemeCase: Sendable, CustomTestStringConvertible {
    var testDescription: String
    var scheme: @Sendable () -> any SignatureScheme
    var headers: [(String, String)]
    var body: [UInt8] = sampleBody
    var expected: Reason?
}

private let now = fixedNow
private let sw = { @Sendable in StandardWebhooksSignatureScheme(secrets: [swSecret, swOther], toleranceSeconds: 300) as any SignatureScheme }
private let swOnlyFirst = { @Sendable in StandardWebhooksSignatureScheme(secrets: [swSecret], toleranceSeconds: 300) as any SignatureScheme }
private let st = { @Sendable in StripeSignatureScheme(secrets: [stripeSecret, otherSecret], toleranceSeconds: 300) as any SignatureScheme }
private let gh = { @Sendable in GitHubSignatureScheme(secrets: [otherSecret]) as any SignatureScheme }
private let sl = { @Sendable in SlackSignatureScheme(secrets: [otherSecret], toleranceSeconds: 300) as any SignatureScheme }
private let sh = { @Sendable in ShopifySignatureScheme(secrets: [otherSecret]) as any SignatureScheme }
private let hm = { @Sendable in
    GenericHMACSignatureScheme(secrets: [otherSecret], header: "X-Sig", prefix: "sha256=", encoding: .hex,
                               parts: [.timestamp, .literal(bytes(".")), .id, .literal(bytes(".")), .body],
                               timestampHeader: "X-Time", idHeader: "X-Id", toleranceSeconds: 300) as any SignatureScheme
}

private func swSig(_ secret: [UInt8] = swSecret, id: String = "msg_1", ts: Int64 = now, body: [UInt8] = sampleBody) -> String {
    StandardWebhooksSignatureScheme.sign(secret: secret, id: id, timestamp: ts, body: body)
}
private func swHeaders(_ signature: String, ts: String = "\(now)") -> [(String, String)] {
    [("webhook-id", "msg_1"), ("webhook-timestamp", ts), ("webhook-signature", signature)]
}
private let stripeGood = StripeSignatureScheme.sign(secret: stripeSecret, timestamp: now, body: sampleBody)
private let stripeV1 = String(stripeGood.split(separator: ",")[1])
private let ghGood = GitHubSignatureScheme.sign(secret: otherSecret, body: sampleBody)
private let slGood = SlackSignatureScheme.sign(secret: otherSecret, timestamp: now, body: sampleBody)
private let shGood = ShopifySignatureScheme.sign(secret: otherSecret, body: sampleBody)
private let hmGood = "sha256=" + HMACSHA256Key(key: otherSecret).authenticate(bytes("\(now).d-1.") + sampleBody).hex
private let zeroB64 = Base64.encode([UInt8](repeating: 0, count: 32))

private let schemeCases: [SchemeCase] = [
    // Standard Webhooks
    .init(testDescription: "sw good", scheme: sw, headers: swHeaders(swSig())),
    .init(testDescription: "sw second secret", scheme: sw, headers: swHeaders(swSig(swOther))),
    .init(testDescription: "sw svix header names", scheme: sw,
          headers: [("svix-id", "msg_1"), ("svix-timestamp", "\(now)"), ("svix-signature", swSig())]),
    .init(testDescription: "sw list, good last", scheme: sw, headers: swHeaders("v1a,xyz v1,\(zeroB64) \(swSig())")),
    .init(testDescription: "sw list, second secret matches", scheme: sw, headers: swHeaders("v1,\(zeroB64) \(swSig(swOther))")),
    .init(testDescription: "sw list, none match one key", scheme: swOnlyFirst, headers: swHeaders("v1,\(zeroB64) \(swSig(swOther))"),
          expected: .signatureMismatch),
    .init(testDescription: "sw tampered", scheme: sw, headers: swHeaders(swSig()), body: sampleBody + [0x20], expected: .signatureMismatch),
    .init(testDescription: "sw other id", scheme: sw, headers: swHeaders(swSig(id: "msg_2")), expected: .signatureMismatch),
    .init(testDescription: "sw expired", scheme: sw, headers: swHeaders(swSig(ts: now - 301), ts: "\(now - 301)"),
          expected: .timestampOutsideWindow),
    .init(testDescription: "sw future", scheme: sw, headers: swHeaders(swSig(ts: now + 301), ts: "\(now + 301)"),
          expected: .timestampOutsideWindow),
    .init(testDescription: "sw no id", scheme: sw, headers: Array(swHeaders(swSig()).dropFirst()), expected: .signatureMalformed),
    .init(testDescription: "sw no timestamp", scheme: sw, headers: [("webhook-id", "msg_1"), ("webhook-signature", swSig())],
          expected: .timestampMissing),
    .init(testDescription: "sw no signature", scheme: sw, headers: Array(swHeaders(swSig()).prefix(2)), expected: .signatureMissing),
    .init(testDescription: "sw only v1a", scheme: sw, headers: swHeaders("v1a,abc"), expected: .signatureMissing),
    .init(testDescription: "sw unpadded base64", scheme: sw, headers: swHeaders(String(swSig().dropLast())), expected: .signatureMalformed),
    .init(testDescription: "sw url-safe base64", scheme: sw,
          headers: swHeaders("v1,-" + zeroB64.dropFirst()),
          expected: .signatureMalformed),
    .init(testDescription: "sw double space", scheme: sw, headers: swHeaders("\(swSig())  \(swSig())"), expected: .signatureMalformed),
    .init(testDescription: "sw duplicated id line", scheme: sw, headers: swHeaders(swSig()) + [("webhook-id", "msg_1")],
          expected: .signatureMalformed),
    .init(testDescription: "sw too many entries", scheme: sw,
          headers: swHeaders(Array(repeating: swSig(), count: 17).joined(separator: " ")), expected: .signatureMalformed),
    // Stripe
    .init(testDescription: "stripe good", scheme: st, headers: [("Stripe-Signature", stripeGood)]),
    .init(testDescription: "stripe two v1 and v0", scheme: st,
          headers: [("Stripe-Signature", "t=\(now),v1=\(String(repeating: "0", count: 64)),\(stripeV1),v0=zz")]),
    .init(testDescription: "stripe rotated", scheme: st,
          headers: [("Stripe-Signature", StripeSignatureScheme.sign(secret: otherSecret, timestamp: now, body: sampleBody))]),
    .init(testDescription: "stripe tampered", scheme: st, headers: [("Stripe-Signature", stripeGood)], body: [], expected: .signatureMismatch),
    .init(testDescription: "stripe expired", scheme: st,
          headers: [("Stripe-Signature", StripeSignatureScheme.sign(secret: stripeSecret, timestamp: now - 301, body: sampleBody))],
          expected: .timestampOutsideWindow),
    .init(testDescription: "stripe future", scheme: st,
          headers: [("Stripe-Signature", StripeSignatureScheme.sign(secret: stripeSecret, timestamp: now + 301, body: sampleBody))],
          expected: .timestampOutsideWindow),
    .init(testDescription: "stripe t changed", scheme: st, headers: [("Stripe-Signature", "t=\(now + 1),\(stripeV1)")],
          expected: .signatureMismatch),
    .init(testDescription: "stripe no t", scheme: st, headers: [("Stripe-Signature", stripeV1)], expected: .timestampMissing),
    .init(testDescription: "stripe two t", scheme: st, headers: [("Stripe-Signature", "t=\(now),t=\(now),\(stripeV1)")],
          expected: .timestampInvalid),
    .init(testDescription: "stripe spaces", scheme: st, headers: [("Stripe-Signature", "t=\(now), \(stripeV1)")],
          expected: .signatureMissing),
    .init(testDescription: "stripe short v1", scheme: st, headers: [("Stripe-Signature", "t=\(now),v1=abc")], expected: .signatureMalformed),
    .init(testDescription: "stripe no v1", scheme: st, headers: [("Stripe-Signature", "t=\(now),v0=abc")], expected: .signatureMissing),
    .init(testDescription: "stripe V1 upper-case key", scheme: st, headers: [("Stripe-Signature", "t=\(now),V1=\(stripeV1.dropFirst(3))")],
          expected: .signatureMissing),
    .init(testDescription: "stripe empty item", scheme: st, headers: [("Stripe-Signature", "t=\(now),,\(stripeV1)")], expected: .signatureMalformed),
    .init(testDescription: "stripe fullwidth t", scheme: st, headers: [("Stripe-Signature", "\u{FF54}=\(now),\(stripeV1)")],
          expected: .timestampMissing),
    .init(testDescription: "stripe 17 v1", scheme: st,
          headers: [("Stripe-Signature", "t=\(now)," + Array(repeating: stripeV1, count: 17).joined(separator: ","))],
          expected: .signatureMalformed),
    .init(testDescription: "stripe two header lines", scheme: st, headers: [("Stripe-Signature", stripeGood), ("Stripe-Signature", stripeGood)],
          expected: .signatureMalformed),
    // GitHub
    .init(testDescription: "github good", scheme: gh, headers: [("X-Hub-Signature-256", ghGood)]),
    .init(testDescription: "github upper-case hex", scheme: gh, headers: [("X-Hub-Signature-256", "sha256=" + ghGood.dropFirst(7).uppercased())]),
    .init(testDescription: "github tampered", scheme: gh, headers: [("X-Hub-Signature-256", ghGood)], body: [0x7B], expected: .signatureMismatch),
    .init(testDescription: "github SHA-1 header only", scheme: gh, headers: [("X-Hub-Signature", "sha1=" + String(repeating: "a", count: 40))],
          expected: .signatureMissing),
    .init(testDescription: "github SHA256= prefix", scheme: gh, headers: [("X-Hub-Signature-256", "SHA256=" + ghGood.dropFirst(7))],
          expected: .signatureMalformed),
    .init(testDescription: "github two values", scheme: gh, headers: [("X-Hub-Signature-256", ghGood + "," + ghGood)], expected: .signatureMalformed),
    .init(testDescription: "github two lines", scheme: gh, headers: [("X-Hub-Signature-256", ghGood), ("X-Hub-Signature-256", ghGood)],
          expected: .signatureMalformed),
    .init(testDescription: "github cyrillic s", scheme: gh, headers: [("X-Hub-Signature-256", "\u{0455}ha256=" + ghGood.dropFirst(7))],
          expected: .signatureMalformed),
    .init(testDescription: "github over-long", scheme: gh, headers: [("X-Hub-Signature-256", ghGood + String(repeating: "0", count: 5000))],
          expected: .signatureMalformed),
    // Slack
    .init(testDescription: "slack good", scheme: sl, headers: [("X-Slack-Request-Timestamp", "\(now)"), ("X-Slack-Signature", slGood)]),
    .init(testDescription: "slack expired", scheme: sl,
          headers: [("X-Slack-Request-Timestamp", "\(now - 400)"),
                    ("X-Slack-Signature", SlackSignatureScheme.sign(secret: otherSecret, timestamp: now - 400, body: sampleBody))],
          expected: .timestampOutsideWindow),
    .init(testDescription: "slack future", scheme: sl,
          headers: [("X-Slack-Request-Timestamp", "\(now + 400)"),
                    ("X-Slack-Signature", SlackSignatureScheme.sign(secret: otherSecret, timestamp: now + 400, body: sampleBody))],
          expected: .timestampOutsideWindow),
    .init(testDescription: "slack timestamp swapped", scheme: sl,
          headers: [("X-Slack-Request-Timestamp", "\(now - 1)"), ("X-Slack-Signature", slGood)], expected: .signatureMismatch),
    .init(testDescription: "slack v1 prefix", scheme: sl,
          headers: [("X-Slack-Request-Timestamp", "\(now)"), ("X-Slack-Signature", "v1=" + slGood.dropFirst(3))], expected: .signatureMalformed),
    .init(testDescription: "slack no timestamp", scheme: sl, headers: [("X-Slack-Signature", slGood)], expected: .timestampMissing),
    .init(testDescription: "slack timestamp with decimals", scheme: sl,
          headers: [("X-Slack-Request-Timestamp", "\(now).0"), ("X-Slack-Signature", slGood)], expected: .timestampInvalid),
    // Shopify
    .init(testDescription: "shopify good", scheme: sh, headers: [("X-Shopify-Hmac-Sha256", shGood)]),
    .init(testDescription: "shopify hex instead of base64", scheme: sh,
          headers: [("X-Shopify-Hmac-Sha256", HMACSHA256Key(key: otherSecret).authenticate(sampleBody).hex)], expected: .signatureMalformed),
    .init(testDescription: "shopify wrong secret", scheme: sh,
          headers: [("X-Shopify-Hmac-Sha256", ShopifySignatureScheme.sign(secret: stripeSecret, body: sampleBody))], expected: .signatureMismatch),
    .init(testDescription: "shopify missing", scheme: sh, headers: [], expected: .signatureMissing),
    .init(testDescription: "shopify trailing space", scheme: sh, headers: [("X-Shopify-Hmac-Sha256", shGood + " ")], expected: .signatureMalformed),
    // Generic
    .init(testDescription: "hmac good", scheme: hm, headers: [("X-Time", "\(now)"), ("X-Id", "d-1"), ("X-Sig", hmGood)]),
    .init(testDescription: "hmac other id", scheme: hm, headers: [("X-Time", "\(now)"), ("X-Id", "d-2"), ("X-Sig", hmGood)],
          expected: .signatureMismatch),
    .init(testDescription: "hmac id missing", scheme: hm, headers: [("X-Time", "\(now)"), ("X-Sig", hmGood)], expected: .signatureMalformed),
    .init(testDescription: "hmac expired", scheme: hm, headers: [("X-Time", "\(now - 301)"), ("X-Id", "d-1"), ("X-Sig", hmGood)],
          expected: .timestampOutsideWindow),
    .init(testDescription: "hmac no prefix", scheme: hm, headers: [("X-Time", "\(now)"), ("X-Id", "d-1"), ("X-Sig", String(hmGood.dropFirst(7)))],
          expected: .signatureMalformed),
]

@Suite("Signature schemes")
struct SchemeTableTests {
    @Test(arguments: schemeCases)
    func verify(_ c: SchemeCase) {
        let verdict = c.scheme().verify(headers: HeaderList(c.headers), body: SegmentedBody(c.body, cutAt: c.body.count > 7 ? [7] : []), now: now)
        #expect(verdict?.reason == c.expected, "\(String(describing: verdict))")
    }

    @Test(arguments: [
        ("t=1,v1=\(String(repeating: "a", count: 64))", true),
        ("t=1", false), ("", false), ("=1", false), ("t", false), ("t=01,v1=\(String(repeating: "a", count: 64))", false),
        ("v1=\(String(repeating: "a", count: 64)),t=1", true), ("t=1,v1=\(String(repeating: "g", count: 64))", false),
    ])
    func stripeHeaderParser(_ text: String, _ accepted: Bool) {
        if case .success = StripeSignatureScheme.parseHeader(text) { #expect(accepted) } else { #expect(!accepted) }
    }

    @Test(arguments: [
        ("v1,\(zeroB64)", 1), ("v1,\(zeroB64) v2,abc v1,\(zeroB64)", 2), ("v1a,abc", 0), ("", -1), (" ", -1),
        ("v1", -1), (",abc", -1), ("v1,\(zeroB64.dropLast())", -1), ("v1,\(zeroB64)\t", -1), ("V1,\(zeroB64)", 0),
    ])
    func standardWebhooksListParser(_ text: String, _ count: Int) {
        #expect(StandardWebhooksSignatureScheme.parseSignatures(text)?.count ?? -1 == count)
    }
}

@Suite("Base64")
struct Base64Tests {
    @Test(arguments: [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="),
                      ("foobar", "Zm9vYmFy")])
    func rfc4648Vectors(_ plain: String, _ encoded: String) {
        #expect(Base64.encode(Array(plain.utf8)) == encoded)
        #expect(Base64.decode(Array(encoded.utf8)) == Array(plain.utf8))
    }

    @Test(arguments: ["Zg", "Zg=", "Zh==", "Zm9=", "Z===", "Zg==Zg==", "Zm9v\n", " Zm9v", "Zm-v", "Zm_v", "=Zm9", "Zm\u{FF56}v", "Zg=a"])
    func refusesNonCanonicalText(_ text: String) {
        #expect(Base64.decode(Array(text.utf8)) == nil)
    }

    @Test func roundTripsEveryByte() {
        let all = (0...255).map { UInt8($0) }
        #expect(Base64.decode(Array(Base64.encode(all).utf8)) == all)
    }
}

@Suite("Event id sources")
struct EventIDSourceTests {
    private func id(_ source: EventIDSource, headers: [(String, String)] = [], body: String) -> Result<String?, Rejection> {
        let b = Array(body.utf8)
        return b.withUnsafeBytes { raw in source.eventID(headers: HeaderList(headers), contiguousBody: { raw }) }
    }

    @Test(arguments: [
        ("/id", #"{"id":"evt_1"}"#, "evt_1"),
        ("/id", #"{"i\u0064":"evt_1"}"#, "evt_1"),
        ("/id", #"{"id":1}"#, nil),
        ("/id", #"{"id":""}"#, nil),
        ("/id", #"{"id":"a","id":"b"}"#, nil),
        ("/id", #"{"id":"a"} x"#, nil),
        ("/id", "token=x&id=1", nil),
        ("/id", #"["evt_1"]"#, nil),
        ("/data/object/id", #"{"data":{"object":{"id":"ch_1"},"id":"x"}}"#, "ch_1"),
        ("/a~1b/m~0n", #"{"a/b":{"m~n":"k"}}"#, "k"),
        ("/list/1", #"{"list":["x","y","z"]}"#, "y"),
        ("/list/01", #"{"list":["x","y","z"]}"#, nil),
        ("/list/9", #"{"list":["x"]}"#, nil),
        ("/event_id", #"{"type":"url_verification","challenge":"c"}"#, nil),
    ] as [(String, String, String?)])
    func bodyPointer(_ pointer: String, _ body: String, _ expected: String?) throws {
        let source = try #require(EventIDSource(parsing: "body:" + pointer))
        #expect(try id(source, body: body).get() == expected)
    }

    @Test func overLongAndDeepBodiesGiveNoID() throws {
        let long = #"{"id":""# + String(repeating: "a", count: 1025) + #""}"#
        #expect(try id(.body(JSONPointer(["id"])), body: long).get() == nil)
        let deep = String(repeating: #"{"a":"#, count: 200) + "1" + String(repeating: "}", count: 200)
        #expect(try id(.body(JSONPointer(Array(repeating: "a", count: 200))), body: deep).get() == nil)
    }

    @Test func headerSource() throws {
        #expect(try id(.header("X-Id"), headers: [("x-id", "d-1")], body: "").get() == "d-1")
        #expect(try id(.header("X-Id"), headers: [], body: "").get() == nil)
        #expect(throws: Rejection.self) { try id(.header("X-Id"), headers: [("X-Id", "a"), ("X-Id", "a")], body: "").get() }
        #expect(try id(.standardWebhooksID, headers: [("svix-id", "s"), ("svix-signature", "v1,x")], body: "").get() == "s")
        #expect(try id(.standardWebhooksID, headers: [("webhook-id", "w"), ("svix-id", "s"), ("webhook-signature", "v1,x")], body: "").get() == "w")
    }

    @Test(arguments: ["header:", "header:X Id", "body:", "body:id", "body:/a~2", "query:x", "HEADER:X"])
    func refusedSyntax(_ text: String) {
        #expect(EventIDSource(parsing: text) == nil)
    }

    @Test func bodyIDIsReadOnlyAfterTheSignature() {
        let scheme = StripeSignatureScheme(secrets: [stripeSecret], toleranceSeconds: 300)
        let admission = EventAdmission(scheme: scheme, identity: .source(.body(JSONPointer(["id"]))), verifiedBy: "stripe", source: "stripe")
        let body = Array(#"{"id":"evt_9"}"#.utf8)
        for (signature, expectedReads) in [(StripeSignatureScheme.sign(secret: stripeSecret, timestamp: now, body: body), 1),
                                           ("t=\(now),v1=\(String(repeating: "0", count: 64))", 0)] {
            var reads = 0
            let result = body.withUnsafeBytes { raw in
                admission.admit(method: "POST", headers: HeaderList([("Stripe-Signature", signature)]), body: body,
                                contiguousBody: { reads += 1; return raw }, now: now)
            }
            #expect(reads == expectedReads)
            if expectedReads == 1 {
                #expect(try! result.get() == AdmittedEvent(id: "evt_9", type: nil, source: "stripe", verifiedBy: "stripe"))
            }
        }
    }
}

@Suite("Generic hmac template")
struct GenericTemplateTests {
    @Test(arguments: [
        ("{body}", true), ("{timestamp}.{body}", true), ("v0:{timestamp}:{body}", true), ("{id}.{timestamp}.{body}", true),
        ("", false), ("{timestamp}", false), ("{body}{body}", false), ("{time}.{body}", false), ("{body", false), ("body}", false),
        ("{{body}}", false),
    ])
    func parse(_ text: String, _ accepted: Bool) {
        if case .success = GenericHMACSignatureScheme.parseTemplate(text) { #expect(accepted) } else { #expect(!accepted) }
    }
}

@Suite("Scheme configuration")
struct SchemeConfigurationTests {
    private static let environment = SecretEnvironment(variables: [:], readFile: { _ in [] })

    private static func load(_ verify: String, dedup: String = "") -> Result<Configuration, ConfigurationProblems> {
        ConfigurationLoader.load(yaml: """
            routes:
              - name: r
                path: /r
                verify: \(verify)
            \(dedup.isEmpty ? "" : "    dedup: " + dedup)
                upstream: {url: "http://127.0.0.1:9/x"}
            """, environment: environment)
    }

    private static func problems(_ verify: String, dedup: String = "") -> [String] {
        guard case .failure(let p) = load(verify, dedup: dedup) else { return [] }
        return p.problems.map(\.description)
    }

    @Test(arguments: [
        (#"{scheme: standard-webhooks, secrets: [{value: "whsec_abc"}]}"#, "routes[0].verify.secrets[0]: expected whsec_"),
        (#"{scheme: standard-webhooks, secrets: [{value: "whsec_AAAAAAAAAAAAAAAAAAAA"}]}"#, "routes[0].verify.secrets[0]: secret is 15 bytes; at least 24"),
        (#"{scheme: stripe, secrets: [{value: "sk_live_x"}]}"#, "routes[0].verify.secrets[0]: expected a Stripe endpoint secret"),
        (#"{scheme: github, secrets: [{value: "x"}], tolerance: 5m}"#, "routes[0].verify.tolerance: github signs no time"),
        (#"{scheme: shopify, secrets: [{value: "x"}], header: X-A}"#, "routes[0].verify.header: unknown key"),
        (#"{scheme: vecu, secrets: [{value: "short"}]}"#, "routes[0].verify.secrets[0]: secret is 5 bytes; at least 32"),
        (#"{scheme: hmac, secrets: [{value: "0123456789abcdef"}]}"#, "routes[0].verify.header: is required"),
        (#"{scheme: hmac, secrets: [{value: "0123456789abcde"}], header: X-A}"#, "routes[0].verify.secrets[0]: secret is 15 bytes"),
        (#"{scheme: hmac, secrets: [{value: "0123456789abcdef"}], header: X-A, encoding: b64}"#, "routes[0].verify.encoding"),
        (#"{scheme: hmac, secrets: [{value: "0123456789abcdef"}], header: X-A, signed: "{timestamp}.{body}"}"#,
         "routes[0].verify.signed: uses {timestamp} but timestamp_header is not set"),
        (#"{scheme: hmac, secrets: [{value: "0123456789abcdef"}], header: X-A, timestamp_header: X-T}"#, "routes[0].verify.timestamp_header"),
        (#"{scheme: hmac, secrets: [{value: "0123456789abcdef"}], header: X-A, signed: "{id}.{body}", id: "body:/id"}"#,
         "routes[0].verify.signed: uses {id}"),
        (#"{scheme: hmac, secrets: [{value: "0123456789abcdef"}], header: X-A, id: "cookie:x"}"#, "routes[0].verify.id"),
        (#"{scheme: hmac, secrets: [{value: "0123456789abcdef"}], header: "X A"}"#, "routes[0].verify.header: not a valid header name"),
        (#"{scheme: hmac, secrets: [{value: "0123456789abcdef"}], header: X-A, tolerance: 5m}"#,
         "routes[0].verify.tolerance: applies only with timestamp_header"),
    ])
    func problemNamesTheKey(_ verify: String, _ expected: String) {
        let found = Self.problems(verify)
        #expect(found.contains { $0.hasPrefix(expected) }, "\(found)")
    }

    @Test func vecuRefusesDedupID() {
        let found = Self.problems(#"{scheme: vecu, secrets: [{value: "0123456789abcdef0123456789abcdef"}]}"#, dedup: "{id: \"header:X\"}")
        #expect(found.contains { $0.hasPrefix("routes[0].dedup.id") }, "\(found)")
    }

    @Test func identitiesAndWarnings() throws {
        let gh = try Self.load(#"{scheme: github, secrets: [{value: "It's a Secret to Everybody"}]}"#).get()
        #expect(gh.routes[0].eventIdentity == .source(.header("X-GitHub-Delivery")))
        #expect(gh.warnings.isEmpty)
        let sw = try Self.load(#"{scheme: standard-webhooks, secrets: [{value: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}]}"#).get()
        #expect(sw.routes[0].verify.secrets[0].bytes == swSecret)
        let overridden = try Self.load(#"{scheme: stripe, secrets: [{value: "whsec_x"}]}"#, dedup: #"{id: "body:/data/object/id"}"#).get()
        #expect(overridden.routes[0].eventIdentity == .source(.body(JSONPointer(["data", "object", "id"]))))
        let bare = try Self.load(#"{scheme: hmac, secrets: [{value: "0123456789abcdef"}], header: X-A}"#).get()
        #expect(bare.routes[0].eventIdentity == EventIdentity.none)
        #expect(bare.warnings.map(\.key) == ["routes[0].dedup.id"])
        let full = try Self.load(#"{scheme: hmac, secrets: [{value: "0123456789abcdef"}], header: X-A, prefix: "sha256=", encoding: base64, signed: "{timestamp}.{id}.{body}", timestamp_header: X-T, id: "header:X-D"}"#).get()
        let h = try #require(full.routes[0].verify.hmac)
        #expect(h.signed == [.timestamp, .literal(Array(".".utf8)), .id, .literal(Array(".".utf8)), .body])
        #expect(h.encoding == .base64 && h.prefix == "sha256=" && h.timestampHeader == "X-T" && h.id == .header("X-D"))
    }
}
