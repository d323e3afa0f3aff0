/// The server's version from `INFO server`, and whether it speaks `SET ... NX GET` (Redis 7.0,
/// Valkey 7.2; Valkey also reports a `redis_version` for compatibility, so its own field wins).
public struct RedisServerVersion: Equatable, Sendable, CustomStringConvertible {
    public var product: String
    public var major: Int
    public var minor: Int

    public var description: String { "\(product) \(major).\(minor)" }

    public var isSupported: Bool {
        let needed = product == "valkey" ? (7, 2) : (7, 0)
        return (major, minor) >= needed
    }

    /// Reads `valkey_version:` or else `redis_version:` from the INFO text (CRLF-separated
    /// `field:value` lines); nil when neither is there or the value is not `digits.digits...`.
    public init?(info: [UInt8]) {
        var found: (String, [UInt8])?
        for line in info.split(separator: 0x0A) {
            let trimmed = line.last == 0x0D ? line.dropLast() : line
            for product in ["valkey", "redis"] {
                let field = Array("\(product)_version:".utf8)
                guard trimmed.starts(with: field) else { continue }
                if product == "valkey" || found == nil { found = (product, Array(trimmed.dropFirst(field.count))) }
            }
        }
        guard let (product, value) = found else { return nil }
        let parts = value.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count >= 2,
              let major = Self.number(parts[0]), let minor = Self.number(parts[1]) else { return nil }
        self.product = product
        self.major = major
        self.minor = minor
    }

    private static func number(_ digits: ArraySlice<UInt8>) -> Int? {
        guard !digits.isEmpty, digits.count <= 4, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(String(decoding: digits, as: UTF8.self))
    }
}
