import Testing
@testable import HookgateCore

/// The breaker in front of the shared ledger, with time passed in.
@Suite("Circuit breaker")
struct CircuitBreakerTests {
    @Test func opensAfterConsecutiveFailuresAndProbesAfterTheDelay() {
        var breaker = CircuitBreaker(threshold: 3, openMilliseconds: 100)
        #expect(breaker.allows(now: 0) == .call)
        #expect(breaker.failed(now: 0) == nil)
        #expect(breaker.failed(now: 1) == nil)
        #expect(breaker.succeeded() == nil, "a success resets the count")
        #expect(breaker.failed(now: 2) == nil)
        #expect(breaker.failed(now: 3) == nil)
        #expect(breaker.failed(now: 4) == .opened)
        #expect(breaker.allows(now: 5) == .skip)
        #expect(breaker.allows(now: 103) == .skip)
        #expect(breaker.allows(now: 104) == .probe)
        #expect(breaker.allows(now: 105) == .skip, "one probe at a time")
        #expect(breaker.failed(now: 106) == nil, "a failed probe opens it again quietly")
        #expect(breaker.allows(now: 150) == .skip)
        #expect(breaker.allows(now: 206) == .probe)
        #expect(breaker.succeeded() == .closed)
        #expect(breaker.allows(now: 207) == .call)
        #expect(!breaker.isOpen)
    }
}
