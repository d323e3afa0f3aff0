import Testing
@testable import HookgateCore

@Suite("Configuration durations")
struct DurationTests {
    @Test(arguments: [
        ("0ms", Int64(0)), ("250ms", 250), ("0s", 0), ("1s", 1000), ("25s", 25_000), ("300s", 300_000), ("5m", 300_000),
        ("72h", 259_200_000), ("24h", 86_400_000), ("007s", 7000), ("999999999999ms", 999_999_999_999),
        ("999999999999h", 3_599_999_999_996_400_000),
    ] as [(String, Int64)])
    func parses(_ text: String, _ milliseconds: Int64) {
        #expect(ConfigDuration(parsing: text)?.milliseconds == milliseconds)
    }

    @Test(arguments: [
        "", "s", "ms", "h", "10", "1.5s", "-1s", "+1s", "10d", "10w", " 10s", "10s ", "10 s", "1h30m", "10S", "10MS", "10H",
        "1_000s", "1,000s", "١٠s", "１０s", "0x10s", "1e3ms", "10sec", "10mins", "1234567890123ms", "ten seconds",
    ])
    func rejects(_ text: String) {
        #expect(ConfigDuration(parsing: text) == nil)
    }

    @Test(arguments: [
        (Int64(0), "0s"), (250, "250ms"), (1500, "1500ms"), (1000, "1s"), (25_000, "25s"), (90_000, "90s"),
        (300_000, "5m"), (5_400_000, "90m"), (3_600_000, "1h"), (259_200_000, "72h"),
    ] as [(Int64, String)])
    func description(_ milliseconds: Int64, _ text: String) {
        let duration = ConfigDuration(milliseconds: milliseconds)
        #expect(duration.description == text)
        #expect(ConfigDuration(parsing: text) == duration, "descriptions parse back")
    }

    @Test func secondsRoundDownAndCompare() {
        #expect(ConfigDuration(milliseconds: 1999).seconds == 1)
        #expect(ConfigDuration(milliseconds: 999).seconds == 0)
        #expect(ConfigDuration.seconds(30).milliseconds == 30_000)
        #expect(ConfigDuration.seconds(29) < ConfigDuration.seconds(30))
        #expect(ConfigDuration(milliseconds: 29_999) < .seconds(30))
        #expect(!(ConfigDuration.seconds(30) < ConfigDuration(milliseconds: 30_000)))
    }
}
