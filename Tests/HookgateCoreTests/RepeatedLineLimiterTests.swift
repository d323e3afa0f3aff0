import Testing
@testable import HookgateCore

/// The limiter that keeps a repeating failure to one log line a second.
@Suite("Repeated log lines")
struct RepeatedLineLimiterTests {
    @Test func aRepeatIsDroppedWithinTheIntervalAndCountedOnTheNextLine() {
        var limiter = RepeatedLineLimiter(intervalMilliseconds: 1_000)
        #expect(limiter.admit("accept failed", now: 0) == 0)
        for t in stride(from: Int64(1), through: 999, by: 1) { #expect(limiter.admit("accept failed", now: t) == nil) }
        #expect(limiter.admit("accept failed", now: 1_000) == 999)
        #expect(limiter.admit("accept failed", now: 1_500) == nil)
        #expect(limiter.admit("accept failed", now: 5_000) == 1)
        #expect(limiter.admit("accept failed", now: 9_000) == 0)
    }

    @Test func distinctLinesAreLimitedApart() {
        var limiter = RepeatedLineLimiter()
        #expect(limiter.admit("a", now: 0) == 0)
        #expect(limiter.admit("b", now: 1) == 0)
        #expect(limiter.admit("a", now: 2) == nil)
        #expect(limiter.admit("b", now: 3) == nil)
        #expect(limiter.admit("a", now: 1_000) == 1)
    }

    @Test func manyDistinctLinesStayBoundedAndStillLimitTheLatest() {
        var limiter = RepeatedLineLimiter()
        for i in 0..<10_000 { #expect(limiter.admit("line \(i)", now: Int64(i / 100)) == 0) }
        #expect(limiter.admit("line 9999", now: 100) == nil)
    }
}
