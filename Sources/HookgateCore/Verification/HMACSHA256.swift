internal import COpenSSL

/// HMAC-SHA256 with a key prepared once: the inner and outer pad states are hashed at start-up
/// and copied (plain structs, no allocation) for each message. RFC 2104.
public struct HMACSHA256Key: @unchecked Sendable {  // immutable after init
    private let inner: SHA256_CTX
    private let outer: SHA256_CTX

    public init(key: [UInt8]) {
        var block = [UInt8](repeating: 0, count: 64)
        if key.count > 64 {
            var digest = [UInt8](repeating: 0, count: 32)
            _ = key.withUnsafeBufferPointer { SHA256($0.baseAddress, key.count, &digest) }
            block.replaceSubrange(0..<32, with: digest)
        } else {
            block.replaceSubrange(0..<key.count, with: key)
        }
        var i = SHA256_CTX()
        var o = SHA256_CTX()
        SHA256_Init(&i)
        SHA256_Init(&o)
        let ipad = block.map { $0 ^ 0x36 }
        let opad = block.map { $0 ^ 0x5c }
        SHA256_Update(&i, ipad, 64)
        SHA256_Update(&o, opad, 64)
        inner = i
        outer = o
    }

    /// The MAC of the concatenation of `parts`, in order.
    public func authenticate(_ feed: ((UnsafeRawBufferPointer) -> Void) -> Void) -> Digest32 {
        var ctx = inner
        feed { piece in
            if piece.count > 0 { SHA256_Update(&ctx, piece.baseAddress, piece.count) }
        }
        var innerDigest = Digest32()
        _ = innerDigest.withUnsafeMutableBytes { SHA256_Final($0.baseAddress!.assumingMemoryBound(to: UInt8.self), &ctx) }
        var octx = outer
        var result = Digest32()
        _ = innerDigest.withUnsafeBytes { SHA256_Update(&octx, $0.baseAddress, 32) }
        _ = result.withUnsafeMutableBytes { SHA256_Final($0.baseAddress!.assumingMemoryBound(to: UInt8.self), &octx) }
        return result
    }

    /// Convenience for whole messages (the `sign` command, tests).
    public func authenticate(_ message: [UInt8]) -> Digest32 {
        authenticate { emit in message.withUnsafeBytes { emit($0) } }
    }
}

/// A 32-byte digest kept inline (no heap allocation).
public struct Digest32: Sendable, Equatable {
    private var storage: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    public init() {}

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: storage, body)
    }

    public mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeMutableBytes(of: &storage, body)
    }

    /// Constant-time comparison (CRYPTO_memcmp): the time taken does not depend on where the
    /// digests differ.
    public func constantTimeEquals(_ other: Digest32) -> Bool {
        withUnsafeBytes { a in other.withUnsafeBytes { b in CRYPTO_memcmp(a.baseAddress, b.baseAddress, 32) == 0 } }
    }

    public static func == (a: Digest32, b: Digest32) -> Bool { a.constantTimeEquals(b) }

    /// Lower-case hex.
    public var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        return withUnsafeBytes { raw in
            String(unsafeUninitializedCapacity: 64) { out in
                for (i, b) in raw.enumerated() {
                    out[2 * i] = digits[Int(b >> 4)]
                    out[2 * i + 1] = digits[Int(b & 0x0f)]
                }
                return 64
            }
        }
    }

    /// Each byte's value as a hex digit, 0xFF for a byte that is not one.
    private static let hexValues: [UInt8] = (0...255).map { c -> UInt8 in
        switch c {
        case 0x30...0x39: return UInt8(c - 0x30)
        case 0x61...0x66: return UInt8(c - 0x61 + 10)
        case 0x41...0x46: return UInt8(c - 0x41 + 10)
        default: return 0xFF
        }
    }

    /// Parses exactly 64 hex digits, either case, without allocating.
    public init?<C: Collection>(hex: C) where C.Element == UInt8 {
        guard hex.count == 64 else { return nil }
        if let parsed = hex.withContiguousStorageIfAvailable({ Self.parse(hex: $0) }) {
            guard let parsed else { return nil }
            self = parsed
            return
        }
        var result = Digest32()
        let ok = result.withUnsafeMutableBytes { out -> Bool in
            Self.hexValues.withUnsafeBufferPointer { table -> Bool in
                var i = 0
                var high: UInt8 = 0
                var invalid: UInt8 = 0
                for c in hex {
                    let v = table[Int(c)]
                    invalid |= v  // 0xFF marks a non-hex byte
                    if i & 1 == 0 { high = v } else { out[i >> 1] = high << 4 | v & 0x0F }
                    i += 1
                }
                return invalid & 0xF0 == 0
            }
        }
        guard ok else { return nil }
        self = result
    }

    /// 64 contiguous hex digits, two per output byte.
    static func parse(hex: UnsafeBufferPointer<UInt8>) -> Digest32? {
        var result = Digest32()
        let ok = result.withUnsafeMutableBytes { out -> Bool in
            hexValues.withUnsafeBufferPointer { table -> Bool in
                var invalid: UInt8 = 0
                for i in 0..<32 {
                    let high = table[Int(hex[2 * i])]
                    let low = table[Int(hex[2 * i + 1])]
                    invalid |= high | low  // 0xFF marks a non-hex byte
                    out[i] = high << 4 | low & 0x0F
                }
                return invalid & 0xF0 == 0
            }
        }
        return ok ? result : nil
    }
}
