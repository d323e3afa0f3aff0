/// Standard base64 (RFC 4648 §4: `A-Z a-z 0-9 + /`, `=` padding), decoded strictly: padding is
/// required, no whitespace, no URL-safe letters, and the unused bits of the last group must be zero,
/// so each byte string has exactly one accepted text (a signature cannot be re-spelled).
public enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Each byte's 6-bit value, 0xFF for a byte outside the alphabet.
    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = UInt8(i) }
        return table
    }()

    /// The decoded bytes, or nil for text that is not canonical padded base64.
    public static func decode<C: Collection>(_ text: C) -> [UInt8]? where C.Element == UInt8 {
        let count = text.count
        guard count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(count / 4 * 3)
        var quad: (UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0)
        var k = 0
        var padding = 0
        var index = 0
        for c in text {
            index += 1
            let v: UInt8
            if c == UInt8(ascii: "=") {
                // Only the last one or two characters may be padding.
                guard index > count - 2 else { return nil }
                padding += 1
                v = 0
            } else {
                guard padding == 0 else { return nil }
                v = values[Int(c)]
                guard v != 0xFF else { return nil }
            }
            switch k {
            case 0: quad.0 = v
            case 1: quad.1 = v
            case 2: quad.2 = v
            default: quad.3 = v
            }
            k += 1
            if k == 4 {
                k = 0
                out.append(quad.0 << 2 | quad.1 >> 4)
                if padding < 2 { out.append(quad.1 << 4 | quad.2 >> 2) }
                if padding < 1 { out.append(quad.2 << 6 | quad.3) }
            }
        }
        // Canonical: the bits the padding leaves unused are zero.
        if padding == 1, quad.2 & 0x03 != 0 { return nil }
        if padding == 2, quad.1 & 0x0F != 0 { return nil }
        return out
    }

    /// Padded standard base64 of `bytes`.
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var iterator = bytes.makeIterator()
        while let a = iterator.next() {
            let b = iterator.next()
            let c = b == nil ? nil : iterator.next()
            out.append(alphabet[Int(a >> 2)])
            out.append(alphabet[Int((a & 0x03) << 4 | (b ?? 0) >> 4)])
            out.append(b.map { alphabet[Int(($0 & 0x0F) << 2 | (c ?? 0) >> 6)] } ?? UInt8(ascii: "="))
            out.append(c.map { alphabet[Int($0 & 0x3F)] } ?? UInt8(ascii: "="))
        }
        return String(decoding: out, as: UTF8.self)
    }
}
