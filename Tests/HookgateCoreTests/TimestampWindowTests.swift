import Testing
@testable import HookgateCore

@Suite("Timestamp window")
struct TimestampWindowTests {
    @Test(arguments: [
        ("1736951400", Int64(1_736_951_400)),
        ("0", 0),
        ("7", 7),
        ("10", 10),
        ("999999999999", 999_999_999_999),  // 12 digits: the longest accepted
    ] as [(String, Int64)])
    func parsesValidTimestamps(_ text: String, _ value: Int64) {
        #expect(TimestampWindow.parseTimestamp(text.utf8) == value)
    }

    @Test(arguments: [
        "",
        "+1736951400",
        "-1736951400",
        "-0",
        "1736951400.0",
        "1736951400.5",
        ".5",
        "01736951400",
        "00",
        "0 ",
        " 1736951400",
        "1736951400 ",
        "1736951400\t",
        "1736 951400",
        "1736951400000",  // 13 digits (milliseconds)
        "9999999999999999999999",
        "١٧٣٦٩٥١٤٠٠",  // Arabic-Indic digits
        "１７３６９５１４００",  // full-width digits
        "0x10",
        "1e9",
        "12a",
        "1_000",
    ])
    func rejectsInvalidTimestamps(_ text: String) {
        #expect(TimestampWindow.parseTimestamp(text.utf8) == nil)
    }

    @Test(arguments: [
        (Int64(0), true),
        (300, true),
        (-300, true),
        (301, false),
        (-301, false),
        (1, true),
        (-1, true),
        (86_400, false),
        (-86_400, false),
    ] as [(Int64, Bool)])
    func windowEdges(offset: Int64, inside: Bool) {
        let window = TimestampWindow(toleranceSeconds: 300)
        // offset > 0: the timestamp is in the future relative to the gateway's clock.
        #expect(window.contains(fixedNow + offset, now: fixedNow) == inside)
    }

    /// (timestamp, now, inside with 300s tolerance, inside with Int64.max tolerance).
    @Test(arguments: [
        (Int64.min, Int64.max, false, false),
        (Int64.max, Int64.min, false, false),
        (Int64.max, Int64.max, true, true),
        (Int64.min, Int64.min, true, true),
        (0, Int64.min, false, false),
        (Int64.min, 0, false, false),
        (Int64.max, 0, false, true),
        (0, Int64.max, false, true),
        (-1, Int64.max, false, false),
    ] as [(Int64, Int64, Bool, Bool)])
    func extremesDoNotCrash(timestamp: Int64, now: Int64, inside: Bool, insideWidest: Bool) {
        #expect(TimestampWindow(toleranceSeconds: 300).contains(timestamp, now: now) == inside)
        #expect(TimestampWindow(toleranceSeconds: Int64.max).contains(timestamp, now: now) == insideWidest)
    }

    @Test func zeroToleranceAcceptsOnlyTheSameSecond() {
        let window = TimestampWindow(toleranceSeconds: 0)
        #expect(window.contains(fixedNow, now: fixedNow))
        #expect(!window.contains(fixedNow + 1, now: fixedNow))
        #expect(!window.contains(fixedNow - 1, now: fixedNow))
    }
}

/// Timestamp handling as seen through the VECU scheme: which Reason each header shape gets.
struct TimestampHeaderCase: Sendable, CustomTestStringConvertible {
    var testDescription: String
    var headers: [(String, String)]
    var expected: Reason?
}

private func signedAt(_ timestamp: Int64) -> [(String, String)] { vecuHeaders(timestamp: timestamp) }

private func signedText(_ text: String) -> [(String, String)] {
    // A signature over the raw header text, so only the timestamp rule can refuse it.
    let digest = HMACSHA256Key(key: vecuSecret).authenticate(Array("\(text).".utf8) + sampleBody)
    return [("X-VECU-Timestamp", text), ("X-VECU-Signature", "sha256=" + digest.hex)]
}

private let timestampHeaderCases: [TimestampHeaderCase] = [
    .init(testDescription: "now", headers: signedAt(fixedNow), expected: nil),
    .init(testDescription: "exactly +tolerance", headers: signedAt(fixedNow + 300), expected: nil),
    .init(testDescription: "exactly -tolerance", headers: signedAt(fixedNow - 300), expected: nil),
    .init(testDescription: "one second too far in the future", headers: signedAt(fixedNow + 301), expected: .timestampOutsideWindow),
    .init(testDescription: "one second too old", headers: signedAt(fixedNow - 301), expected: .timestampOutsideWindow),
    .init(testDescription: "an hour in the future", headers: signedAt(fixedNow + 3600), expected: .timestampOutsideWindow),
    .init(testDescription: "epoch", headers: signedAt(0), expected: .timestampOutsideWindow),
    .init(testDescription: "largest 12-digit value", headers: signedAt(999_999_999_999), expected: .timestampOutsideWindow),
    .init(testDescription: "missing timestamp", headers: [("X-VECU-Signature", vecuHeaders()[1].1)], expected: .timestampMissing),
    .init(testDescription: "missing timestamp and signature", headers: [], expected: .timestampMissing),
    .init(testDescription: "repeated timestamp",
          headers: signedAt(fixedNow) + [("x-vecu-timestamp", "\(fixedNow)")], expected: .timestampInvalid),
    .init(testDescription: "milliseconds", headers: signedText("\(fixedNow)000"), expected: .timestampInvalid),
    .init(testDescription: "leading zero (signed as sent)", headers: signedText("0\(fixedNow)"), expected: .timestampInvalid),
    .init(testDescription: "plus sign (signed as sent)", headers: signedText("+\(fixedNow)"), expected: .timestampInvalid),
    .init(testDescription: "decimal (signed as sent)", headers: signedText("\(fixedNow).0"), expected: .timestampInvalid),
    .init(testDescription: "trailing space (signed as sent)", headers: signedText("\(fixedNow) "), expected: .timestampInvalid),
    .init(testDescription: "empty", headers: signedText(""), expected: .timestampInvalid),
    .init(testDescription: "ISO 8601 date", headers: signedText("2025-01-15T14:30:00Z"), expected: .timestampInvalid),
    .init(testDescription: "raw text form of a valid stamp", headers: signedText("\(fixedNow)"), expected: nil),
]

@Suite("Timestamp headers through the VECU scheme")
struct TimestampHeaderTests {
    @Test(arguments: timestampHeaderCases)
    func reason(_ c: TimestampHeaderCase) {
        let scheme = VecuSignatureScheme(secrets: [vecuSecret], toleranceSeconds: 300)
        let rejection = scheme.verify(headers: HeaderList(c.headers), body: sampleBody, now: fixedNow)
        #expect(rejection?.reason == c.expected)
        if let rejection { #expect(rejection.status == 401) }
    }

    @Test func outsideWindowMessageNamesTheTolerance() throws {
        let scheme = VecuSignatureScheme(secrets: [vecuSecret], toleranceSeconds: 300)
        let rejection = try #require(scheme.verify(headers: HeaderList(signedAt(fixedNow - 301)), body: sampleBody, now: fixedNow))
        #expect(rejection.message.contains("300s"))
    }

    /// A clock reading far from any real time must be refused, not trap.
    @Test(arguments: [Int64.min, Int64.min + 1, -1, Int64.max - 1, Int64.max])
    func extremeClockReadings(now: Int64) {
        let scheme = VecuSignatureScheme(secrets: [vecuSecret], toleranceSeconds: 300)
        let rejection = scheme.verify(headers: HeaderList(signedAt(fixedNow)), body: sampleBody, now: now)
        #expect(rejection?.reason == .timestampOutsideWindow)
    }
}
