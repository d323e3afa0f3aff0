/// The header fields of a redelivery: those hookgate forwarded when the event arrived (kept in
/// the spool without the route's `add_headers`, so that no upstream credential is written to
/// disk and a reload's headers apply), with a fresh `X-VECU-Timestamp` and `X-VECU-Signature`
/// (an app that checks freshness would refuse the old ones with a final 4xx), the attempt number
/// in `X-Hookgate-Redelivery`, then the route's current `add_headers`.
public enum RedeliveryHeaders {
    public static let attemptHeader = "X-Hookgate-Redelivery"

    public static func build(stored: [(name: String, value: String)], body: [UInt8], secret: [UInt8], now: Int64, attempt: Int,
                             addHeaders: [(name: String, value: String)]) -> [(name: String, value: String)] {
        var out: [(name: String, value: String)] = []
        out.reserveCapacity(stored.count + addHeaders.count + 3)
        for field in stored {
            if sameName(field.name, VecuSignatureScheme.timestampHeader) || sameName(field.name, VecuSignatureScheme.signatureHeader)
                || sameName(field.name, attemptHeader) { continue }
            out.append(field)
        }
        out.append((VecuSignatureScheme.timestampHeader, String(now)))
        out.append((VecuSignatureScheme.signatureHeader, VecuSignatureScheme.sign(secret: secret, timestamp: now, body: body)))
        out.append((attemptHeader, String(attempt)))
        out.append(contentsOf: addHeaders)
        return out
    }

    /// Header names compared as ASCII bytes, ignoring ASCII case only.
    static func sameName(_ a: String, _ b: String) -> Bool {
        a.utf8.count == b.utf8.count && zip(a.utf8, b.utf8).allSatisfy { ASCIICase.lower($0) == ASCIICase.lower($1) }
    }

    /// Header fields as stored in the spool: `name: value` lines joined by CRLF (a value cannot
    /// hold CR or LF, so the form is unambiguous).
    public static func encode(_ fields: [(name: String, value: String)]) -> [UInt8] {
        var out: [UInt8] = []
        for (i, field) in fields.enumerated() {
            if i > 0 { out += [0x0D, 0x0A] }
            out += Array(field.name.utf8)
            out += [UInt8(ascii: ":"), UInt8(ascii: " ")]
            out += Array(field.value.utf8)
        }
        return out
    }

    /// The inverse of `encode`; lines without `: ` are skipped (never written by `encode`).
    public static func decode(_ bytes: [UInt8]) -> [(name: String, value: String)] {
        var out: [(name: String, value: String)] = []
        var start = 0
        func line(_ end: Int) {
            let slice = bytes[start..<end]
            if let colon = slice.firstIndex(of: UInt8(ascii: ":")), colon + 1 < end, bytes[colon + 1] == UInt8(ascii: " ") {
                out.append((String(decoding: bytes[start..<colon], as: UTF8.self), String(decoding: bytes[(colon + 2)..<end], as: UTF8.self)))
            }
        }
        var i = 0
        while i + 1 < bytes.count {
            if bytes[i] == 0x0D, bytes[i + 1] == 0x0A {
                line(i)
                start = i + 2
                i += 2
            } else {
                i += 1
            }
        }
        if start < bytes.count { line(bytes.count) }
        return out
    }
}
