/// Why hookgate answered a request itself, as a stable code for logs, metrics and the JSON
/// error body. Each carries the HTTP status it is answered with.
public enum Reason: String, Sendable, CaseIterable {
    case malformedRequest = "malformed_request"
    case headersTooLarge = "headers_too_large"
    case httpVersionNotSupported = "http_version_not_supported"
    case unsupportedTransferEncoding = "unsupported_transfer_encoding"
    case expectationFailed = "expectation_failed"
    case requestTimeout = "request_timeout"
    case routeNotFound = "route_not_found"
    case methodNotAllowed = "method_not_allowed"
    case bodyTooLarge = "body_too_large"
    case timestampMissing = "timestamp_missing"
    case timestampInvalid = "timestamp_invalid"
    case timestampOutsideWindow = "timestamp_outside_window"
    case signatureMissing = "signature_missing"
    case signatureMalformed = "signature_malformed"
    case signatureMismatch = "signature_mismatch"
    case envelopeInvalid = "envelope_invalid"
    case eventIDMismatch = "event_id_mismatch"
    case eventTypeMismatch = "event_type_mismatch"
    /// Not an error: the event was already delivered (answered 200).
    case duplicate = "duplicate"
    /// Another copy of the event is being forwarded and did not succeed (or too many wait on it).
    case inFlight = "in_flight"
    case upstreamUnreachable = "upstream_unreachable"
    case upstreamTimeout = "upstream_timeout"
    case upstreamInvalidResponse = "upstream_invalid_response"
    case upstreamBusy = "upstream_busy"
    /// The shared ledger could not be reached and the configuration says to refuse rather than
    /// risk a duplicate (`ledger.redis.on_unavailable: reject`).
    case ledgerUnavailable = "ledger_unavailable"
    case shuttingDown = "shutting_down"
    /// Not an error: no destination of the route wanted the event's type (answered 200).
    case filtered = "filtered"
    /// Several destinations matched and one failed in a way the sender retries (answered 503).
    case destinationFailed = "destination_failed"
    /// Several destinations matched, none failed retriably, one refused with a final 4xx (that
    /// 4xx is the answer; 400 stands for it here).
    case destinationRefused = "destination_refused"
    /// Not an error: the forward failed on one of the sender's last attempts and the spool holds
    /// the event on disk; it will be redelivered (answered 202).
    case spooled = "spooled"

    /// The status sent to the sender. 5xx and 429 make the platform retry; other 4xx do not,
    /// so only input that can never become valid gets a 4xx.
    public var status: Int {
        switch self {
        case .malformedRequest: return 400
        case .headersTooLarge: return 431
        case .httpVersionNotSupported: return 505
        case .unsupportedTransferEncoding: return 501
        case .expectationFailed: return 417
        case .requestTimeout: return 408
        case .routeNotFound: return 404
        case .methodNotAllowed: return 405
        case .bodyTooLarge: return 413
        case .timestampMissing, .timestampInvalid, .timestampOutsideWindow,
             .signatureMissing, .signatureMalformed, .signatureMismatch: return 401
        case .envelopeInvalid, .eventIDMismatch, .eventTypeMismatch: return 400
        case .duplicate, .filtered: return 200
        case .destinationRefused: return 400
        case .inFlight, .upstreamBusy, .shuttingDown, .ledgerUnavailable, .destinationFailed: return 503
        case .upstreamUnreachable, .upstreamInvalidResponse: return 502
        case .upstreamTimeout: return 504
        case .spooled: return 202
        }
    }

    /// Whether the answer carries `Retry-After` (the sender should come back soon).
    public var retryAfterSeconds: Int? {
        switch self {
        case .inFlight, .upstreamBusy, .ledgerUnavailable, .destinationFailed: return 1
        case .shuttingDown: return 5
        default: return nil
        }
    }
}

/// A request hookgate answers itself: the reason and a human-readable message.
public struct Rejection: Error, Sendable, Equatable {
    public var reason: Reason
    public var message: String

    public init(_ reason: Reason, _ message: String) {
        self.reason = reason
        self.message = message
    }

    public var status: Int { reason.status }

    /// `{"error":"<reason>","message":"..."}`.
    public var jsonBody: String {
        "{\"error\":\"\(reason.rawValue)\",\"message\":\(JSONText.quoted(message))}"
    }
}

/// Minimal JSON string rendering for answers and log lines.
public enum JSONText {
    /// `s` as a JSON string literal, escaping quotes, backslashes, control characters and the
    /// line separators U+2028/U+2029.
    public static func quoted(_ s: String) -> String {
        var out = ByteWriter(capacity: s.utf8.count + 2)
        writeQuoted(s, to: &out)
        return String(decoding: out.finish(), as: UTF8.self)
    }

    /// Writes `s` as a JSON string literal to `out`, working on UTF-8 bytes.
    public static func writeQuoted(_ s: String, to out: inout ByteWriter) {
        let hexDigits: StaticString = "0123456789abcdef"
        out.write(UInt8(ascii: "\""))
        s.withUTF8Bytes { bytes in
            // Most values (ids, routes, codes) need no escaping: copy them whole.
            if PlainBytes.needNoJSONEscape(UnsafeRawBufferPointer(bytes)) {
                out.write(bytes)
                return
            }
            var i = 0
            while i < bytes.count {
                let c = bytes[i]
                switch c {
                case UInt8(ascii: "\""): out.write("\\\"" as StaticString)
                case UInt8(ascii: "\\"): out.write("\\\\" as StaticString)
                case 0x0A: out.write("\\n" as StaticString)
                case 0x0D: out.write("\\r" as StaticString)
                case 0x09: out.write("\\t" as StaticString)
                case 0x00..<0x20, 0x7F:
                    out.write("\\u00" as StaticString)
                    out.write(hexDigits.utf8Start[Int(c >> 4)])
                    out.write(hexDigits.utf8Start[Int(c & 0x0F)])
                case 0xE2 where i + 2 < bytes.count && bytes[i + 1] == 0x80 && (bytes[i + 2] == 0xA8 || bytes[i + 2] == 0xA9):
                    out.write("\\u202" as StaticString)
                    out.write(bytes[i + 2] == 0xA8 ? UInt8(ascii: "8") : UInt8(ascii: "9"))
                    i += 2
                default: out.write(c)
                }
                i += 1
            }
        }
        out.write(UInt8(ascii: "\""))
    }
}

extension Array where Element == UInt8 {
    /// Appends a string's UTF-8 bytes with one copy (appending `.utf8` iterates byte by byte).
    mutating func appendUTF8(_ s: String) {
        s.withUTF8Bytes { append(contentsOf: $0) }
    }
}
