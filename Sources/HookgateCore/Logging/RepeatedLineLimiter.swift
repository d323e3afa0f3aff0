/// Lets the same log line through at most once per interval: a failure that repeats thousands of
/// times a second (a failing accept) costs one line a second, not the disk. The repeats in between
/// are counted, and the next line that gets through reports them as `suppressed`.
/// Time is given, not read: `now` is any monotonic clock in milliseconds.
public struct RepeatedLineLimiter: Sendable {
    public let intervalMilliseconds: Int64
    private var lines: [String: (lastWritten: Int64, suppressed: Int)] = [:]
    /// Distinct lines remembered at most; the oldest are forgotten beyond it.
    private static let capacity = 64

    public init(intervalMilliseconds: Int64 = 1_000) {
        self.intervalMilliseconds = intervalMilliseconds
    }

    /// nil: drop this line. Otherwise write it, with the number of repeats dropped since the last
    /// time it was written.
    public mutating func admit(_ line: String, now: Int64) -> Int? {
        if let seen = lines[line], now - seen.lastWritten < intervalMilliseconds {
            lines[line] = (seen.lastWritten, seen.suppressed + 1)
            return nil
        }
        let suppressed = lines[line]?.suppressed ?? 0
        if lines[line] == nil, lines.count >= Self.capacity {
            let quiet = lines.filter { now - $0.value.lastWritten >= intervalMilliseconds }.map(\.key)
            for key in quiet { lines[key] = nil }
            if lines.count >= Self.capacity, let oldest = lines.min(by: { $0.value.lastWritten < $1.value.lastWritten })?.key {
                lines[oldest] = nil
            }
        }
        lines[line] = (now, 0)
        return suppressed
    }
}
