/// The freshness rule: a delivery's timestamp may differ from the gateway's clock by at most
/// `tolerance` seconds, in the past or the future. The clock is read by the caller.
public struct TimestampWindow: Sendable, Equatable {
    public var toleranceSeconds: Int64
    public init(toleranceSeconds: Int64) { self.toleranceSeconds = toleranceSeconds }

    public func contains(_ timestamp: Int64, now: Int64) -> Bool {
        let (difference, overflow) = now.subtractingReportingOverflow(timestamp)
        return !overflow && difference.magnitude <= UInt64(toleranceSeconds)
    }

    /// Parses a Unix-seconds header value strictly: ASCII digits only, no sign, no decimals,
    /// no spaces, no leading zeros, at most 12 digits (year 33658). The raw text is what is
    /// signed, so anything a sender would not produce is refused rather than normalised.
    public static func parseTimestamp<C: Collection>(_ text: C) -> Int64? where C.Element == UInt8 {
        guard !text.isEmpty, text.count <= 12, text.first != UInt8(ascii: "0") || text.count == 1 else { return nil }
        var value: Int64 = 0
        for c in text {
            guard c >= 0x30 && c <= 0x39 else { return nil }
            value = value * 10 + Int64(c - 0x30)
        }
        return value
    }
}
