/// A route's secrets prepared as HMAC-SHA256 keys, and the one constant-time check every HMAC
/// scheme ends with. Several secrets during rotation, several signatures in one header: every
/// key is compared with every claimed digest, so the time taken reveals neither which matched.
public struct HMACKeyRing: Sendable {
    private let keys: [HMACSHA256Key]

    public init(secrets: [[UInt8]]) { keys = secrets.map(HMACSHA256Key.init(key:)) }

    /// Whether the MAC of the fed message under any key equals any of `claimed`.
    public func matchesAny(_ claimed: [Digest32], _ feed: ((UnsafeRawBufferPointer) -> Void) -> Void) -> Bool {
        var matched = false
        for key in keys {
            let digest = key.authenticate(feed)
            for c in claimed where digest.constantTimeEquals(c) { matched = true }
        }
        return matched
    }
}

/// How a digest is written in a signature header.
public enum SignatureEncoding: String, Sendable, CaseIterable {
    case hex
    case base64

    /// The digest written in `text`, which must be exactly 64 hex digits (either case) or the 44
    /// characters of padded standard base64.
    public func digest<C: Collection>(_ text: C) -> Digest32? where C.Element == UInt8 {
        switch self {
        case .hex: return Digest32(hex: text)
        case .base64:
            guard text.count == 44, let bytes = Base64.decode(text) else { return nil }
            return Digest32(bytes: bytes)
        }
    }

    public func text(_ digest: Digest32) -> String {
        switch self {
        case .hex: return digest.hex
        case .base64: return digest.withUnsafeBytes { Base64.encode($0) }
        }
    }
}

extension Digest32 {
    /// Exactly 32 bytes.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        var d = Digest32()
        d.withUnsafeMutableBytes { out in for (i, b) in bytes.enumerated() { out[i] = b } }
        self = d
    }

    /// `prefix` (exact bytes) followed by one digest in `encoding`, nothing else.
    public static func parse(_ text: String, prefix: [UInt8], encoding: SignatureEncoding) -> Digest32? {
        text.withUTF8Bytes { bytes in
            guard bytes.starts(with: prefix) else { return nil }
            return encoding.digest(bytes[prefix.count...])
        }
    }
}

/// Reading the headers a scheme needs, with the shared reason codes.
enum SchemeHeaders {
    /// The longest signature header a list-carrying scheme parses; longer is malformed rather than
    /// a reason to do unbounded work.
    static let maximumSignatureHeaderBytes = 4096
    /// The most signatures one header may carry (rotation needs two).
    static let maximumSignatures = 16

    /// The one value of a signature header.
    static func signature(_ headers: some HeaderFields, _ name: String) -> Result<String, Rejection> {
        switch headers.value(named: name) {
        case .missing: return .failure(Rejection(.signatureMissing, "\(name) header is required"))
        case .repeated: return .failure(Rejection(.signatureMalformed, "\(name) header appears more than once"))
        case .one(let v):
            guard v.utf8.count <= maximumSignatureHeaderBytes else {
                return .failure(Rejection(.signatureMalformed, "\(name) header is longer than \(maximumSignatureHeaderBytes) bytes"))
            }
            return .success(v)
        }
    }

    /// The one value of a timestamp header, as its signed text and its Unix seconds.
    static func timestamp(_ headers: some HeaderFields, _ name: String) -> Result<(text: String, seconds: Int64), Rejection> {
        switch headers.value(named: name) {
        case .missing: return .failure(Rejection(.timestampMissing, "\(name) header is required"))
        case .repeated: return .failure(Rejection(.timestampInvalid, "\(name) header appears more than once"))
        case .one(let v):
            guard let seconds = TimestampWindow.parseTimestamp(v.utf8) else {
                return .failure(Rejection(.timestampInvalid, "\(name) must be Unix seconds (digits only)"))
            }
            return .success((v, seconds))
        }
    }

    static func outside(_ name: String, _ window: TimestampWindow) -> Rejection {
        Rejection(.timestampOutsideWindow, "\(name) is more than \(window.toleranceSeconds)s away from the gateway's clock")
    }
}

/// Feeds a string's bytes to an HMAC without copying.
func emitText(_ text: String, _ emit: (UnsafeRawBufferPointer) -> Void) {
    text.withUTF8Bytes { emit(UnsafeRawBufferPointer($0)) }
}

func emitBytes(_ bytes: [UInt8], _ emit: (UnsafeRawBufferPointer) -> Void) {
    bytes.withUnsafeBytes { emit($0) }
}
