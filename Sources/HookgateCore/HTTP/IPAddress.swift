/// An IPv4 or IPv6 address as bytes, parsed strictly from its text form: dotted quad without
/// leading zeros (no octal ambiguity), or RFC 4291 hex groups with one `::` and an optional
/// trailing dotted quad; no zone, no port, no brackets. An IPv4-mapped IPv6 address
/// (`::ffff:a.b.c.d`) is taken as the IPv4 address, so a dual-stack listener's peers match
/// IPv4 ranges.
public struct IPAddress: Sendable, Equatable {
    /// 4 bytes for IPv4, 16 for IPv6.
    public let bytes: [UInt8]

    public var isIPv4: Bool { bytes.count == 4 }

    public init?(parsing text: String) {
        guard let parsed = text.withUTF8Bytes({ Self.parse($0) }) else { return nil }
        bytes = parsed
    }

    /// The address written in `text` (ASCII bytes).
    init?(text: UnsafeBufferPointer<UInt8>) {
        guard let parsed = Self.parse(text) else { return nil }
        bytes = parsed
    }

    private static func parse(_ text: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard !text.isEmpty, text.count <= 45 else { return nil }
        if !text.contains(UInt8(ascii: ":")) { return ipv4(text[...]) }
        guard let v6 = ipv6(text) else { return nil }
        if v6[0..<10].allSatisfy({ $0 == 0 }), v6[10] == 0xFF, v6[11] == 0xFF { return Array(v6[12..<16]) }
        return v6
    }

    private static func ipv4(_ text: Slice<UnsafeBufferPointer<UInt8>>) -> [UInt8]? {
        var out: [UInt8] = []
        for part in text.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false) {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  part.count == 1 || part.first != 0x30 else { return nil }
            let value = part.reduce(0) { $0 * 10 + Int($1 - 0x30) }
            guard value <= 255 else { return nil }
            out.append(UInt8(value))
        }
        return out.count == 4 ? out : nil
    }

    private static func ipv6(_ text: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        // Split around the one `::` allowed; each side is a list of groups.
        var head: [UInt16] = []
        var tail: [UInt16] = []
        var compressed = false
        var i = 0
        let n = text.count
        if n >= 2, text[0] == 0x3A, text[1] == 0x3A {
            compressed = true
            i = 2
        } else if text[0] == 0x3A {
            return nil
        }
        while i < n {
            // One group: 1-4 hex digits, or a dotted quad as the last 32 bits.
            var j = i
            while j < n, text[j] != 0x3A { j += 1 }
            let group = text[i..<j]
            guard !group.isEmpty else { return nil }
            if group.contains(UInt8(ascii: ".")) {
                guard j == n, let quad = ipv4(group) else { return nil }
                let groups = [UInt16(quad[0]) << 8 | UInt16(quad[1]), UInt16(quad[2]) << 8 | UInt16(quad[3])]
                if compressed { tail += groups } else { head += groups }
                i = j
                break
            }
            guard group.count <= 4 else { return nil }
            var value: UInt16 = 0
            for c in group {
                guard let digit = hexValue(c) else { return nil }
                value = value << 4 | UInt16(digit)
            }
            if compressed { tail.append(value) } else { head.append(value) }
            i = j
            if i < n {
                // A separator: `:` then another group, or `::` once.
                i += 1
                if i < n, text[i] == 0x3A {
                    guard !compressed else { return nil }
                    compressed = true
                    i += 1
                } else if i == n {
                    return nil
                }
            }
        }
        let total = head.count + tail.count
        guard compressed ? total <= 7 : total == 8 else { return nil }
        let groups = head + [UInt16](repeating: 0, count: 8 - total) + tail
        return groups.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }
}

/// A CIDR range (`10.0.0.0/8`, `fd00::/8`) or a single address (`192.0.2.1`), as given in
/// `trusted_proxies`. Host bits below the prefix are ignored.
public struct IPNetwork: Sendable, Equatable {
    public let address: IPAddress
    public let prefixLength: Int

    public init?(parsing text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let addressText = String(parts[0])
        guard let address = IPAddress(parsing: addressText) else { return nil }
        let written6 = addressText.contains(":")
        var prefix = address.bytes.count * 8
        if parts.count == 2 {
            let digits = parts[1]
            guard !digits.isEmpty, digits.count <= 3, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  let n = Int(digits), n <= (written6 ? 128 : 32) else { return nil }
            // `::ffff:a.b.c.d/n` was read as IPv4: its prefix counts the 96 mapped bits too.
            if written6 && address.isIPv4 {
                guard n >= 96 else { return nil }
                prefix = n - 96
            } else {
                prefix = n
            }
        }
        self.address = address
        prefixLength = prefix
    }

    public func contains(_ other: IPAddress) -> Bool {
        guard other.bytes.count == address.bytes.count else { return false }
        var remaining = prefixLength
        for k in 0..<address.bytes.count where remaining > 0 {
            let bits = min(8, remaining)
            let mask: UInt8 = bits == 8 ? 0xFF : ~(0xFF >> UInt8(bits))
            if address.bytes[k] & mask != other.bytes[k] & mask { return false }
            remaining -= bits
        }
        return true
    }
}
