/// The PROXY protocol header a network load balancer puts at the start of a connection (HAProxy's
/// specification, versions 1 and 2): who the client really is. Pure: bytes in, verdict out.
///
/// The parser is given the bytes received so far. `needMore` promises that every one of them
/// belongs to the header (so the caller may consume them from the socket without eating into what
/// follows); `header` says exactly how long the header is.
public enum ProxyProtocolHeader {
    /// A v1 header is at most 107 bytes, CRLF included.
    public static let maximumV1Bytes = 107
    /// v2: the 16-byte preamble plus at most this much address and TLV data. 520 leaves room for a
    /// UNIX address block (216) and TLVs a load balancer adds (AWS, GCP, Azure ids and TLS info).
    public static let maximumV2Bytes = 16 + 520
    /// Enough bytes to hold any header hookgate accepts.
    public static let maximumBytes = maximumV2Bytes

    static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    static let v1Prefix: [UInt8] = Array("PROXY ".utf8)

    /// The proxied client: its address as text (as `inet_ntop` writes it) and port.
    public struct Source: Sendable, Equatable {
        public var address: String
        public var port: UInt16
        public init(address: String, port: UInt16) {
            self.address = address
            self.port = port
        }
    }

    /// What the bytes received so far amount to.
    public enum Parse: Sendable, Equatable {
        /// A valid prefix; all the given bytes belong to the header.
        case needMore
        /// Not a PROXY header (the connection is closed without an answer).
        case invalid(String)
        /// A complete header of `length` bytes. `source` nil: `LOCAL` (v2), `UNKNOWN` (v1), or an
        /// address family that is not IP: the socket's peer address stands.
        case header(length: Int, source: Source?)
    }

    public static func parse(_ bytes: UnsafeRawBufferPointer) -> Parse {
        guard let first = bytes.first else { return .needMore }
        if first == v1Prefix[0] { return parseV1(bytes) }
        if first == v2Signature[0] { return parseV2(bytes) }
        return .invalid("no PROXY protocol signature")
    }

    public static func parse(_ bytes: [UInt8]) -> Parse {
        bytes.withUnsafeBytes { parse($0) }
    }

    // MARK: version 1: "PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n"

    private static func parseV1(_ bytes: UnsafeRawBufferPointer) -> Parse {
        let prefixLength = min(bytes.count, v1Prefix.count)
        guard bytes.prefix(prefixLength).elementsEqual(v1Prefix.prefix(prefixLength)) else {
            return .invalid("no PROXY protocol signature")
        }
        var end: Int?
        // The CR may be at most at index 105: CR LF then end the 107th byte.
        for i in 0..<min(bytes.count, maximumV1Bytes - 1) {
            let c = bytes[i]
            if c == 0x0D {
                guard i + 1 < bytes.count else { return .needMore }
                guard bytes[i + 1] == 0x0A else { return .invalid("CR not followed by LF in the v1 header") }
                end = i
                break
            }
            // Printable ASCII and spaces only: no bare LF, NUL, tabs or bytes above 0x7E.
            guard c >= 0x20, c <= 0x7E else { return .invalid("control or non-ASCII byte in the v1 header") }
        }
        guard let end else {
            return bytes.count >= maximumV1Bytes - 1 ? .invalid("v1 header longer than \(maximumV1Bytes) bytes") : .needMore
        }
        guard end >= v1Prefix.count else { return .invalid("v1 header too short") }
        let line = Array(bytes[v1Prefix.count..<end])
        let fields = line.split(separator: 0x20, omittingEmptySubsequences: false)
        let length = end + 2
        guard let protocolField = fields.first else { return .invalid("v1 header without a protocol") }
        if protocolField.elementsEqual("UNKNOWN".utf8) {
            // The rest of the line is to be ignored (the balancer could not tell the client).
            return .header(length: length, source: nil)
        }
        guard fields.count == 5 else { return .invalid("v1 header needs protocol, two addresses and two ports") }
        let source: [UInt8]?
        let destination: [UInt8]?
        if protocolField.elementsEqual("TCP4".utf8) {
            source = IPAddressText.parseIPv4(fields[1])
            destination = IPAddressText.parseIPv4(fields[2])
        } else if protocolField.elementsEqual("TCP6".utf8) {
            source = IPAddressText.parseIPv6(fields[1])
            destination = IPAddressText.parseIPv6(fields[2])
        } else {
            return .invalid("v1 protocol must be TCP4, TCP6 or UNKNOWN")
        }
        guard let source, destination != nil else { return .invalid("v1 address does not match its protocol") }
        guard let sourcePort = parsePort(fields[3]), parsePort(fields[4]) != nil else {
            return .invalid("v1 port must be a decimal number from 0 to 65535")
        }
        return .header(length: length, source: Source(address: IPAddressText.format(source), port: sourcePort))
    }

    /// 0...65535 in decimal, without sign or leading zeros.
    private static func parsePort(_ text: ArraySlice<UInt8>) -> UInt16? {
        guard !text.isEmpty, text.count <= 5, text.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        if text.count > 1, text.first == 0x30 { return nil }
        let value = text.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        return value <= 65_535 ? UInt16(value) : nil
    }

    // MARK: version 2: binary

    private static func parseV2(_ bytes: UnsafeRawBufferPointer) -> Parse {
        let signatureLength = min(bytes.count, v2Signature.count)
        guard bytes.prefix(signatureLength).elementsEqual(v2Signature.prefix(signatureLength)) else {
            return .invalid("no PROXY protocol signature")
        }
        if bytes.count > 12 {
            guard bytes[12] >> 4 == 2 else { return .invalid("v2 version nibble is not 2") }
            guard bytes[12] & 0x0F <= 1 else { return .invalid("v2 command is neither LOCAL nor PROXY") }
        }
        if bytes.count > 13 {
            guard bytes[13] >> 4 <= 3, bytes[13] & 0x0F <= 2 else { return .invalid("v2 unknown address family or transport") }
        }
        guard bytes.count >= 16 else { return .needMore }
        let declared = Int(bytes[14]) << 8 | Int(bytes[15])
        let length = 16 + declared
        guard length <= maximumV2Bytes else { return .invalid("v2 header of \(length) bytes exceeds \(maximumV2Bytes)") }
        guard bytes.count >= length else { return .needMore }
        let isProxy = bytes[12] & 0x0F == 1
        let family = bytes[13] >> 4
        let transport = bytes[13] & 0x0F
        // LOCAL: the balancer's own connection (health checks); the address block is skipped.
        guard isProxy else { return .header(length: length, source: nil) }
        let block = UnsafeRawBufferPointer(rebasing: bytes[16..<length])
        let addressLength: Int
        switch family {
        case 0: return .header(length: length, source: nil)  // UNSPEC: nothing to learn
        case 1: addressLength = 12
        case 2: addressLength = 36
        default: addressLength = 216  // AF_UNIX: paths, no IP to take
        }
        guard block.count >= addressLength else { return .invalid("v2 address block shorter than its family needs") }
        if family != 3, transport != 1 { return .invalid("v2 transport is not STREAM") }
        guard validTLVs(UnsafeRawBufferPointer(rebasing: block[addressLength...])) else {
            return .invalid("v2 TLVs do not fill the header exactly")
        }
        switch family {
        case 1:
            let address = Array(block[0..<4])
            let port = UInt16(block[8]) << 8 | UInt16(block[9])
            return .header(length: length, source: Source(address: IPAddressText.format(address), port: port))
        case 2:
            let address = Array(block[0..<16])
            let port = UInt16(block[32]) << 8 | UInt16(block[33])
            return .header(length: length, source: Source(address: IPAddressText.format(address), port: port))
        default:
            return .header(length: length, source: nil)
        }
    }

    /// Type-length-value records, each whole, back to back to the end.
    private static func validTLVs(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            guard bytes.count - offset >= 3 else { return false }
            let valueLength = Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2])
            offset += 3
            guard bytes.count - offset >= valueLength else { return false }
            offset += valueLength
        }
        return true
    }
}

/// IPv4 and IPv6 addresses as text, strictly: what a PROXY v1 header may carry, and the text
/// hookgate reports for an address (the same as `inet_ntop`).
public enum IPAddressText {
    /// Four decimal octets, no leading zeros (`010` could be octal to some readers), no spaces.
    public static func parseIPv4<S: Collection<UInt8>>(_ text: S) -> [UInt8]? {
        let parts = text.split(separator: 0x2E, omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var octets: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            if part.count > 1, part.first == 0x30 { return nil }
            let value = part.reduce(0) { $0 * 10 + Int($1 - 0x30) }
            guard value <= 255 else { return nil }
            octets.append(UInt8(value))
        }
        return octets
    }

    /// RFC 4291 text: up to eight groups of 1-4 hex digits, one `::`, an optional dotted IPv4 tail.
    public static func parseIPv6<S: Collection<UInt8>>(_ text: S) -> [UInt8]? {
        let chars = Array(text)
        guard chars.count >= 2, chars.count <= 45 else { return nil }
        var head: [UInt16] = []
        var tail: [UInt16] = []
        var compressed = false
        var index = 0
        if chars.starts(with: [0x3A, 0x3A]) {
            compressed = true
            index = 2
        } else if chars.first == 0x3A {
            return nil
        }
        while index < chars.count {
            var end = index
            while end < chars.count, chars[end] != 0x3A { end += 1 }
            let group = chars[index..<end]
            if group.contains(0x2E) {
                // Dotted IPv4 only as the last group.
                guard end == chars.count, let v4 = parseIPv4(group) else { return nil }
                let words = [UInt16(v4[0]) << 8 | UInt16(v4[1]), UInt16(v4[2]) << 8 | UInt16(v4[3])]
                if compressed { tail += words } else { head += words }
                index = end
                break
            }
            guard !group.isEmpty, group.count <= 4, let word = hexWord(group) else { return nil }
            if compressed { tail.append(word) } else { head.append(word) }
            if end == chars.count { index = end; break }
            // A colon: either a separator or the start of "::".
            if end + 1 < chars.count, chars[end + 1] == 0x3A {
                guard !compressed else { return nil }
                compressed = true
                index = end + 2
            } else {
                guard end + 1 < chars.count else { return nil }  // trailing single colon
                index = end + 1
            }
        }
        let count = head.count + tail.count
        if compressed { guard count <= 7 else { return nil } } else { guard count == 8 else { return nil } }
        let words = head + [UInt16](repeating: 0, count: 8 - count) + tail
        return words.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }

    private static func hexWord(_ digits: ArraySlice<UInt8>) -> UInt16? {
        var value: UInt16 = 0
        for c in digits {
            let v: UInt16
            switch c {
            case 0x30...0x39: v = UInt16(c - 0x30)
            case 0x61...0x66: v = UInt16(c - 0x61 + 10)
            case 0x41...0x46: v = UInt16(c - 0x41 + 10)
            default: return nil
            }
            value = value << 4 | v
        }
        return value
    }

    /// 4 bytes as dotted decimal; 16 bytes as RFC 5952 text (lowercase, the longest run of two or
    /// more zero groups as `::`, IPv4-mapped and -compatible addresses with a dotted tail), like glibc's
    /// inet_ntop.
    public static func format(_ bytes: [UInt8]) -> String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        precondition(bytes.count == 16, "an IP address is 4 or 16 bytes")
        let words = (0..<8).map { UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]) }
        if words[0..<5].allSatisfy({ $0 == 0 }), words[5] == 0xFFFF {
            return "::ffff:" + format(Array(bytes[12..<16]))
        }
        if words[0..<6].allSatisfy({ $0 == 0 }), words[6] != 0 {
            return "::" + format(Array(bytes[12..<16]))  // IPv4-compatible, as glibc writes it
        }
        var bestStart = -1
        var bestLength = 0
        var runStart = -1
        for i in 0...8 {
            if i < 8, words[i] == 0 {
                if runStart < 0 { runStart = i }
            } else if runStart >= 0 {
                if i - runStart > bestLength { bestStart = runStart; bestLength = i - runStart }
                runStart = -1
            }
        }
        let hex = words.map { String($0, radix: 16) }
        guard bestLength >= 2 else { return hex.joined(separator: ":") }
        return hex[0..<bestStart].joined(separator: ":") + "::" + hex[(bestStart + bestLength)...].joined(separator: ":")
    }
}
