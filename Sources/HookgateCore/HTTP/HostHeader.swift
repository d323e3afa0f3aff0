/// The `Host` header's value as RFC 9112 §3.2 and RFC 3986 allow it, a little stricter, as
/// nginx is: `host [":" port]` where host is an IPv6 literal in brackets, or a name of
/// dot-separated non-empty labels of letters, digits, `-` and `_` (an IPv4 address is such a
/// name), at most 255 bytes, one trailing dot allowed; port 1 to 5 digits, at most 65535.
/// Paths, spaces, userinfo, percent-encoding and non-ASCII bytes are refused: the value is
/// passed on as `X-Forwarded-Host`, where an application builds URLs from it.
public enum HostHeader {
    public static func isValid(_ value: [UInt8]) -> Bool {
        value.withUnsafeBufferPointer { isValid($0) }
    }

    public static func isValid(_ value: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !value.isEmpty else { return false }
        var hostEnd = value.count
        var portStart: Int?
        if value[0] == UInt8(ascii: "[") {
            guard let close = value.firstIndex(of: UInt8(ascii: "]")), value[1..<close].contains(UInt8(ascii: ":")),
                  IPAddress(text: UnsafeBufferPointer(rebasing: value[1..<close])) != nil else { return false }
            hostEnd = close + 1
            if hostEnd < value.count {
                guard value[hostEnd] == UInt8(ascii: ":") else { return false }
                portStart = hostEnd + 1
            }
        } else {
            if let colon = value.firstIndex(of: UInt8(ascii: ":")) {
                hostEnd = colon
                portStart = colon + 1
            }
            guard isRegName(UnsafeBufferPointer(rebasing: value[0..<hostEnd])) else { return false }
        }
        if let portStart {
            let port = value[portStart...]
            guard !port.isEmpty, port.count <= 5, port.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  port.reduce(0, { $0 * 10 + Int($1 - 0x30) }) <= 65535 else { return false }
        }
        return true
    }

    private static func isRegName(_ name: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !name.isEmpty, name.count <= 255 else { return false }
        // One pass: labels of 1 to 63 name bytes between dots; one trailing dot is allowed
        // after at least one label.
        var labelLength = 0
        for c in name {
            if c == UInt8(ascii: ".") {
                guard labelLength > 0 else { return false }
                labelLength = 0
            } else {
                guard (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2D || c == 0x5F,
                      labelLength < 63 else { return false }
                labelLength += 1
            }
        }
        return true  // ends in a label, or in one dot after a label
    }
}
