internal import COpenSSL

/// The rules of the ledger shared by replicas on Redis, as values: the command each step sends
/// and what a replica does with each reply. The Redis store (HookgateServer) only sends these
/// commands and follows these answers; the model test runs the same commands against a model
/// of Redis under every interleaving of two replicas.
///
/// One key per event holds either a claim token (a replica is forwarding it; expires after the
/// claim lifetime, so a replica that dies cannot block the event) or `delivered` (expires after
/// the route's dedup ttl).
public enum SharedClaim {
    /// The value of a delivered mark. Claim tokens never equal it (they start with `c:`).
    public static let deliveredMark: [UInt8] = Array("delivered".utf8)

    /// `<prefix>:<hex SHA-256 of route, source, id>`, each length-prefixed (8 bytes, big-endian)
    /// so that no two different triples hash the same bytes. Over the exact UTF-8 bytes.
    public static func key(prefix: String, route: String, source: String, id: String) -> [UInt8] {
        var material: [UInt8] = []
        for part in [route, source, id] {
            let count = UInt64(part.utf8.count)
            for shift in stride(from: 56, through: 0, by: -8) { material.append(UInt8(truncatingIfNeeded: count >> UInt64(shift))) }
            material.append(contentsOf: part.utf8)
        }
        var digest = [UInt8](repeating: 0, count: 32)
        _ = material.withUnsafeBufferPointer { SHA256($0.baseAddress, $0.count, &digest) }
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var out = Array(prefix.utf8)
        out.append(UInt8(ascii: ":"))
        for byte in digest {
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0x0F)])
        }
        return out
    }

    /// A claim token: unique per process (`process`, random at start) and claim (`sequence`).
    public static func token(process: UInt64, sequence: UInt64) -> [UInt8] {
        Array("c:\(String(process, radix: 16)):\(String(sequence, radix: 16))".utf8)
    }

    // MARK: Commands

    /// Claims the event unless someone has it, and says who had it (Redis >= 7.0).
    public static func claimCommand(key: [UInt8], token: [UInt8], lifetimeMilliseconds: Int64) -> [[UInt8]] {
        [b("SET"), key, token, b("NX"), b("PX"), b(String(lifetimeMilliseconds)), b("GET")]
    }

    /// After the upstream's 2xx: unconditional, because the event is delivered whatever the key
    /// holds (an expired claim of ours, another replica's claim, nothing after a Redis restart).
    public static func deliveredCommand(key: [UInt8], ttlMilliseconds: Int64) -> [[UInt8]] {
        [b("SET"), key, deliveredMark, b("PX"), b(String(ttlMilliseconds))]
    }

    /// A duplicate answered from this process's ledger: this process saw the upstream's 2xx, so
    /// writing `delivered` is true whatever the key holds. `XX` extends an existing key only:
    /// it keeps the mark where it is, turns another replica's claim on an already delivered
    /// event into the truth (that replica's release then cannot erase it), and does not
    /// recreate keys Redis was told to forget. No script is needed, so the ACL stays small.
    public static func renewCommand(key: [UInt8], ttlMilliseconds: Int64) -> [[UInt8]] {
        [b("SET"), key, deliveredMark, b("XX"), b("PX"), b(String(ttlMilliseconds))]
    }

    /// While another replica forwards: what the key holds now.
    public static func pollCommand(key: [UInt8]) -> [[UInt8]] { [b("GET"), key] }

    /// Compare-and-delete: removes the key only while it still holds this claim's token, so a
    /// late release (our claim expired, another replica claimed or delivered meanwhile) changes
    /// nothing. Runs atomically in Redis; it calls GET and DEL, which the ACL must allow.
    public static let releaseScript = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"

    /// SHA-1 of `releaseScript`, lowercase hex, for `EVALSHA`.
    public static let releaseScriptSHA1: String = {
        let text = Array(releaseScript.utf8)
        var digest = [UInt8](repeating: 0, count: 20)
        _ = text.withUnsafeBufferPointer { SHA1($0.baseAddress, $0.count, &digest) }
        return digest.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }()

    public static func releaseCommand(key: [UInt8], token: [UInt8], cached: Bool) -> [[UInt8]] {
        cached ? [b("EVALSHA"), b(releaseScriptSHA1), b("1"), key, token]
            : [b("EVAL"), b(releaseScript), b("1"), key, token]
    }

    // MARK: Replies

    /// What the claim's reply means.
    public enum ClaimAnswer: Equatable, Sendable {
        /// The key was absent and now holds our token: forward.
        case forward
        /// Delivered before: a duplicate.
        case delivered
        /// Another replica's claim: wait for it (poll).
        case claimedElsewhere
        /// An error reply or something Redis never answers to this command: treat as unavailable.
        case failed
    }

    public static func claimAnswer(_ reply: RESPValue) -> ClaimAnswer {
        switch reply {
        case .bulk(nil): .forward
        case .bulk(let value?) where value == deliveredMark: .delivered
        case .bulk(let value?) where !value.isEmpty: .claimedElsewhere
        default: .failed
        }
    }

    /// What a poll's reply means.
    public enum PollAnswer: Equatable, Sendable {
        case delivered
        /// The other replica released its claim (its forward failed) or the claim expired.
        case gone
        case stillClaimed
        case failed
    }

    public static func pollAnswer(_ reply: RESPValue) -> PollAnswer {
        switch reply {
        case .bulk(nil): .gone
        case .bulk(let value?) where value == deliveredMark: .delivered
        case .bulk(let value?) where !value.isEmpty: .stillClaimed
        default: .failed
        }
    }

    /// Whether a write (`SET ... PX`, `SET ... XX PX`) succeeded: `OK`, or nil for `XX` on an
    /// absent key (nothing to renew, not a failure).
    public static func writeSucceeded(_ reply: RESPValue) -> Bool {
        switch reply {
        case .simple(let s): s == b("OK")
        case .bulk(nil): true
        default: false
        }
    }

    /// Whether a release's reply says the script ran (1: deleted, 0: not ours any more).
    public static func releaseRan(_ reply: RESPValue) -> Bool {
        if case .integer(let n) = reply { return n == 0 || n == 1 }
        return false
    }

    /// `EVALSHA` answered that the script is not cached: send it again with `EVAL`.
    public static func isNoScript(_ reply: RESPValue) -> Bool {
        if case .error(let e) = reply { return e.starts(with: b("NOSCRIPT")) }
        return false
    }

    // MARK: Waiting for another replica

    /// Delays between polls of another replica's claim: 50, 100, 200, 400, then every 500 ms,
    /// while the total stays within `bound` (the longest forward the claimer can take).
    public struct PollSchedule: Sendable, Equatable {
        public let boundMilliseconds: Int64
        public private(set) var waitedMilliseconds: Int64 = 0
        private var next: Int64 = 50

        public init(boundMilliseconds: Int64) { self.boundMilliseconds = boundMilliseconds }

        /// The next delay, or nil once waiting more would pass the bound.
        public mutating func nextDelay() -> Int64? {
            guard waitedMilliseconds < boundMilliseconds else { return nil }
            let delay = min(next, boundMilliseconds - waitedMilliseconds)
            waitedMilliseconds += delay
            next = min(next * 2, 500)
            return delay
        }
    }

    private static func b(_ text: String) -> [UInt8] { Array(text.utf8) }
}
