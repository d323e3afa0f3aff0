import Testing
@testable import HookgateCore

/// The guide's filter evaluation order, rule by rule and in combination.

struct FilterCase: Sendable, CustomTestStringConvertible {
    var testDescription: String
    var filter: EventFilter
    var type: String
    var decision: EventFilter.Decision
}

private let custody = ["custody.*"]

private func filter(exclude: [String] = [], include: [String] = [], patterns: [String] = [], groups: [String: [String]] = [:]) -> EventFilter {
    EventFilter(exclude: exclude, include: include, patterns: patterns, productGroups: groups.keys.sorted(),
                productGroupPatterns: groups.keys.sorted().flatMap { groups[$0]! })
}

private func c(_ label: String, _ f: EventFilter, _ type: String, _ decision: EventFilter.Decision) -> FilterCase {
    FilterCase(testDescription: label, filter: f, type: type, decision: decision)
}

private let filterCases: [FilterCase] = [
    // 5. all three delivering lists empty: everything not excluded.
    c("no filter delivers everything", .everything, "custody.vehicle.released", .catchAll),
    c("no filter delivers any type", .everything, "x", .catchAll),
    c("exclude only: others delivered", filter(exclude: ["credential.expired"]), "credential.revoked", .catchAll),
    // 1. exclude: an exact match skips, before anything else.
    c("exclude only: excluded skipped", filter(exclude: ["credential.expired"]), "credential.expired", .excluded),
    c("exclude wins over include", filter(exclude: ["a.b"], include: ["a.b"]), "a.b", .excluded),
    c("exclude wins over patterns", filter(exclude: ["custody.vehicle.released"], patterns: custody), "custody.vehicle.released", .excluded),
    c("exclude wins over product groups", filter(exclude: ["custody.x"], groups: ["CUSTODY_SDK": custody]), "custody.x", .excluded),
    c("exclude is exact, not a prefix", filter(exclude: ["custody"], patterns: custody), "custody.x", .pattern),
    c("exclude is case-sensitive", filter(exclude: ["Custody.X"]), "custody.x", .catchAll),
    // 2. include: exact.
    c("include exact match", filter(include: ["custody.vehicle.released"]), "custody.vehicle.released", .included),
    c("include is exact: other type unmatched", filter(include: ["custody.vehicle.released"]), "custody.vehicle.parked", .unmatched),
    c("include is exact: longer type unmatched", filter(include: ["custody.vehicle"]), "custody.vehicle.released", .unmatched),
    c("include before patterns", filter(include: ["custody.a"], patterns: custody), "custody.a", .included),
    c("include compares bytes: a look-alike is not it", filter(include: ["custody.vehicle.released"]), "cust\u{43E}dy.vehicle.released", .unmatched),
    c("include compares bytes: composed vs decomposed", filter(include: ["caf\u{E9}"]), "cafe\u{301}", .unmatched),
    // 3. patterns: `*` matches any run, dots included.
    c("pattern matches across dots", filter(patterns: custody), "custody.vehicle.released", .pattern),
    c("pattern star matches empty run", filter(patterns: custody), "custody.", .pattern),
    c("pattern needs its literal prefix", filter(patterns: custody), "custodyx", .unmatched),
    c("pattern anchored at the start", filter(patterns: custody), "x.custody.a", .unmatched),
    c("pattern star in the middle", filter(patterns: ["custody.*.released"]), "custody.vehicle.key.released", .pattern),
    c("pattern star in the middle, wrong end", filter(patterns: ["custody.*.released"]), "custody.vehicle.parked", .unmatched),
    c("pattern leading star", filter(patterns: ["*.released"]), "custody.vehicle.released", .pattern),
    c("pattern lone star", filter(patterns: ["*"]), "anything.at.all", .pattern),
    c("pattern without star is exact", filter(patterns: ["custody.a"]), "custody.ab", .unmatched),
    c("pattern several stars backtrack", filter(patterns: ["a*b*c"]), "axxbyybzc", .pattern),
    c("pattern several stars no match", filter(patterns: ["a*b*c"]), "axxbyyb", .unmatched),
    c("pattern before product groups", filter(patterns: custody, groups: ["CUSTODY_SDK": custody]), "custody.a", .pattern),
    c("pattern dot is literal", filter(patterns: ["custody.*"]), "custodyXa", .unmatched),
    // 4. product groups: their expansion.
    c("product group expansion matches", filter(groups: ["CUSTODY_SDK": custody]), "custody.vehicle.released", .productGroup),
    c("product group other namespace unmatched", filter(groups: ["CUSTODY_SDK": custody]), "credential.revoked", .unmatched),
    c("second product group matches", filter(groups: ["CUSTODY_SDK": custody, "CREDENTIAL_SDK": ["credential.*"]]), "credential.revoked", .productGroup),
    // Combinations: a non-empty list that matches nothing means not delivered.
    c("include given, unmatched", filter(exclude: ["x"], include: ["a"]), "b", .unmatched),
    c("the issue's example: include", filter(exclude: ["credential.expired"], include: ["custody.vehicle.released"], patterns: custody,
                                             groups: ["CUSTODY_SDK": custody]), "custody.vehicle.released", .included),
    c("the issue's example: pattern", filter(exclude: ["credential.expired"], include: ["custody.vehicle.released"], patterns: custody,
                                             groups: ["CUSTODY_SDK": custody]), "custody.key.issued", .pattern),
    c("the issue's example: excluded", filter(exclude: ["credential.expired"], include: ["custody.vehicle.released"], patterns: custody,
                                              groups: ["CUSTODY_SDK": custody]), "credential.expired", .excluded),
    c("the issue's example: other", filter(exclude: ["credential.expired"], include: ["custody.vehicle.released"], patterns: custody,
                                           groups: ["CUSTODY_SDK": custody]), "credential.revoked", .unmatched),
    c("empty type matches no include", filter(include: ["a"]), "", .unmatched),
    c("empty type with lone star", filter(patterns: ["*"]), "", .pattern),
]

@Suite struct EventFilterTests {
    @Test(arguments: filterCases)
    func decides(_ c: FilterCase) {
        #expect(c.filter.decide(c.type) == c.decision)
        #expect(c.filter.delivers(c.type) == (c.decision != .excluded && c.decision != .unmatched))
    }

    @Test func wildcardIsLinearOnHostilePatterns() {
        // Many stars against a long near-miss: backtracking to one star keeps it linear-ish.
        let pattern = Array(String(repeating: "*a", count: 200).utf8) + [UInt8(ascii: "b")]
        let text = Array(String(repeating: "a", count: 5_000).utf8)
        #expect(!EventFilter.wildcard(pattern, matches: text))
    }

    @Test(arguments: [
        ("", true, "an empty pattern"),
        ("", false, "an empty event type"),
        ("custody *", true, "printable ASCII"),
        ("custody.\u{430}", false, "printable ASCII"),
        ("custody.\"x", true, "printable ASCII"),
        ("custody.*", false, "cannot hold '*'"),
        (String(repeating: "a", count: 257), false, "at most 256"),
    ])
    func refusesBadEntries(_ entry: String, _ wildcards: Bool, _ message: String) {
        #expect(EventFilter.problem(with: entry, wildcards: wildcards)?.contains(message) == true)
    }

    @Test func acceptsGoodEntries() {
        #expect(EventFilter.problem(with: "custody.*", wildcards: true) == nil)
        #expect(EventFilter.problem(with: "custody.vehicle.released", wildcards: false) == nil)
    }

    @Test func unionCarriesEveryWantedEvent() {
        let a = filter(exclude: ["custody.x", "both.x"], patterns: custody)
        let b = filter(exclude: ["both.x"], include: ["credential.revoked"], groups: ["CUSTODY_SDK": custody])
        let u = EventFilter.union([a, b])
        #expect(u.exclude == ["both.x"])
        #expect(u.include == ["credential.revoked"])
        #expect(u.patterns == custody)
        #expect(u.productGroups == ["CUSTODY_SDK"])
        for type in ["custody.a", "credential.revoked", "custody.x", "both.x", "other.y"] {
            let wanted = a.delivers(type) || b.delivers(type)
            if wanted { #expect(u.delivers(type), "\(type)") }
        }
        #expect(!u.delivers("both.x"))
    }

    @Test func unionWithACatchAllTakesEverything() {
        let u = EventFilter.union([filter(include: ["a"]), filter(exclude: ["b"]), filter(exclude: ["b", "c"])])
        #expect(u == filter(exclude: ["b"]))
        // c is excluded by one catch-all but wanted by the other: the union must carry it.
        #expect(u.delivers("c"))
        #expect(EventFilter.union([]) == .everything)
    }
}

/// The answer to the sender for an event that matched several destinations, or none.
@Suite struct FanOutAnswerTests {
    struct AggregateCase: Sendable, CustomTestStringConvertible {
        var testDescription: String
        var results: [DestinationResult]
        var status: Int
        var body: String
        var retryAfter: Int?
    }

    static let cases: [AggregateCase] = [
        .init(testDescription: "none matched: filtered", results: [], status: 200, body: #"{"destinations":{}}"#),
        .init(testDescription: "all delivered", results: [.delivered, .delivered], status: 200,
              body: #"{"destinations":{"a":"delivered","b":"delivered"}}"#),
        .init(testDescription: "delivered and duplicate", results: [.delivered, .duplicate], status: 200,
              body: #"{"destinations":{"a":"delivered","b":"duplicate"}}"#),
        .init(testDescription: "all duplicate", results: [.duplicate, .duplicate, .duplicate], status: 200,
              body: #"{"destinations":{"a":"duplicate","b":"duplicate","c":"duplicate"}}"#),
        .init(testDescription: "one failed", results: [.delivered, .failed], status: 503,
              body: #"{"error":"destination_failed","message":"a destination did not accept the event; retry","destinations":{"a":"delivered","b":"failed"}}"#,
              retryAfter: 1),
        .init(testDescription: "failed beats refused", results: [.refused(status: 422), .failed, .delivered], status: 503,
              body: #"{"error":"destination_failed","message":"a destination did not accept the event; retry","destinations":{"a":"refused","b":"failed","c":"delivered"}}"#,
              retryAfter: 1),
        .init(testDescription: "refused without failure: that 4xx", results: [.delivered, .refused(status: 422)], status: 422,
              body: #"{"error":"destination_refused","message":"a destination refused the event","destinations":{"a":"delivered","b":"refused"}}"#),
        .init(testDescription: "two refusals: the first in order", results: [.refused(status: 404), .refused(status: 410)], status: 404,
              body: #"{"error":"destination_refused","message":"a destination refused the event","destinations":{"a":"refused","b":"refused"}}"#),
    ]

    @Test(arguments: cases)
    func aggregates(_ c: AggregateCase) {
        let names = ["a", "b", "c"]
        let answer = FanOutAnswer.aggregate(Array(zip(names, c.results)).map { ($0, $1) })
        #expect(answer.status == c.status)
        #expect(answer.jsonBody == c.body)
        #expect(answer.retryAfter == c.retryAfter)
    }

    @Test(arguments: [
        (200, DestinationResult.delivered), (204, .delivered), (299, .delivered),
        (429, .failed), (500, .failed), (503, .failed), (302, .failed), (101, .failed),
        (400, .refused(status: 400)), (404, .refused(status: 404)), (499, .refused(status: 499)),
    ])
    func resultOfAStatus(_ status: Int, _ result: DestinationResult) {
        #expect(DestinationResult.forStatus(status) == result)
    }

    @Test func noAnswerIsAFailure() {
        #expect(DestinationResult.forStatus(nil) == .failed)
    }
}
