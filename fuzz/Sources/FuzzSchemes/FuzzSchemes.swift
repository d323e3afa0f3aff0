// libFuzzer target: the header parsers of the standard-webhooks, stripe, github, slack, shopify
// and hmac schemes, Base64.decode, and the body event-id scan (JSONPointer), with whole verify()
// calls over fuzzed headers. Input: one selector byte, then `header value \n body`. Built by fuzz/run.
import HookgateCore

private let secret = Array("fuzz-scheme-secret-0123456789abcdef".utf8)
private let now: Int64 = 1_700_000_000
private let generic = GenericHMACSignatureScheme(
    secrets: [secret], header: "X-Sig", prefix: "sha256=", encoding: .hex,
    parts: [.timestamp, .literal(Array(".".utf8)), .body], timestampHeader: "X-Time", idHeader: nil, toleranceSeconds: 300)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSchemes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard size > 0, let data else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let selector = bytes[0] % 7
    let rest = bytes.dropFirst()
    let parts = rest.split(separator: 0x0A, maxSplits: 1, omittingEmptySubsequences: false)
    let value = String(decoding: parts[0], as: UTF8.self)
    let body = parts.count > 1 ? Array(parts[1]) : []

    // Base64: whatever decodes is canonical, so encoding it gives the same text back.
    if let decoded = Base64.decode(Array(rest)) {
        precondition(Array(Base64.encode(decoded).utf8) == Array(rest), "base64 is not canonical")
    }

    switch selector {
    case 0:
        if let digests = StandardWebhooksSignatureScheme.parseSignatures(value) {
            precondition(digests.count <= 16, "too many signatures accepted")
        }
        let scheme = StandardWebhooksSignatureScheme(secrets: [secret], toleranceSeconds: 300)
        _ = scheme.verify(headers: HeaderList([("webhook-id", "m"), ("webhook-timestamp", "\(now)"), ("webhook-signature", value)]),
                          body: body, now: now)
        let good = StandardWebhooksSignatureScheme.sign(secret: secret, id: "m", timestamp: now, body: body)
        precondition(scheme.verify(headers: HeaderList([("webhook-id", "m"), ("webhook-timestamp", "\(now)"),
                                                        ("webhook-signature", good)]), body: body, now: now) == nil)
    case 1:
        if case .success(let header) = StripeSignatureScheme.parseHeader(value) {
            precondition(!header.signatures.isEmpty && header.signatures.count <= 16, "stripe signature count")
            precondition(TimestampWindow.parseTimestamp(header.timestampText.utf8) == header.timestamp, "stripe t")
        }
        let scheme = StripeSignatureScheme(secrets: [secret], toleranceSeconds: 300)
        _ = scheme.verify(headers: HeaderList([("Stripe-Signature", value)]), body: body, now: now)
        let good = StripeSignatureScheme.sign(secret: secret, timestamp: now, body: body)
        precondition(scheme.verify(headers: HeaderList([("Stripe-Signature", good)]), body: body, now: now) == nil)
    case 2:
        let scheme = GitHubSignatureScheme(secrets: [secret])
        if GitHubSignatureScheme.parseSignature(value) != nil { precondition(value.utf8.count == 71) }
        _ = scheme.verify(headers: HeaderList([("X-Hub-Signature-256", value)]), body: body, now: now)
        precondition(scheme.verify(headers: HeaderList([("X-Hub-Signature-256", GitHubSignatureScheme.sign(secret: secret, body: body))]),
                                   body: body, now: now) == nil)
    case 3:
        let scheme = SlackSignatureScheme(secrets: [secret], toleranceSeconds: 300)
        _ = scheme.verify(headers: HeaderList([("X-Slack-Request-Timestamp", "\(now)"), ("X-Slack-Signature", value)]), body: body, now: now)
        _ = scheme.verify(headers: HeaderList([("X-Slack-Request-Timestamp", value), ("X-Slack-Signature", "v0=" + String(repeating: "0", count: 64))]),
                          body: body, now: now)
    case 4:
        let scheme = ShopifySignatureScheme(secrets: [secret])
        if ShopifySignatureScheme.parseSignature(value) != nil { precondition(value.utf8.count == 44) }
        _ = scheme.verify(headers: HeaderList([("X-Shopify-Hmac-Sha256", value)]), body: body, now: now)
    case 5:
        _ = generic.verify(headers: HeaderList([("X-Time", "\(now)"), ("X-Sig", value)]), body: body, now: now)
        _ = GenericHMACSignatureScheme.parseTemplate(value)
    default:
        // The body id scan: any pointer over any body, validated like the envelope.
        if let pointer = JSONPointer(parsing: value) {
            let id = body.withUnsafeBytes { raw in
                EventIDSource.body(pointer).eventID(headers: HeaderList([]), contiguousBody: { raw })
            }
            if case .success(let found?) = id { precondition(!found.isEmpty && found.utf8.count <= 1024) }
        }
    }
    return 0
}
