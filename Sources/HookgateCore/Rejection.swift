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
    case shuttingDown = "shutting_down"

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
        case .duplicate: return 200
        case .inFlight, .upstreamBusy, .shuttingDown: return 503
        case .upstreamUnreachable, .upstreamInvalidResponse: return 502
        case .upstreamTimeout: return 504
        }
    }

    /// Whether the answer carries `Retry-After` (the sender should come back soon).
    public var retryAfterSeconds: Int? {
        switch self {
        case .inFlight, .upstreamBusy: return 1
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
    /// `s` as a JSON string literal, escaping quotes, backslashes and control characters.
    public static func quoted(_ s: String) -> String {
        var out = "\""
        out.reserveCapacity(s.utf8.count + 2)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F || scalar.value == 0x2028 || scalar.value == 0x2029:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
        return out
    }
}
