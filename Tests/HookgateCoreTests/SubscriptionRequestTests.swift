import Testing
@testable import HookgateCore

/// The guide's subscription request as `hookgate subscribe` builds it.
@Suite struct SubscriptionRequestTests {
    @Test func bodyHasTheGuidesFieldsAndNames() {
        let request = SubscriptionRequest(
            url: "https://your-app.com/webhooks/vecu", secret: "s3cr3t",
            filter: EventFilter(exclude: ["credential.expired"], include: ["custody.vehicle.released"], patterns: ["custody.*"],
                                productGroups: ["CUSTODY_SDK"]))
        #expect(request.json == #"{"url":"https://your-app.com/webhooks/vecu","authType":"HMAC_SHA256","authConfig":{"secret":"s3cr3t"},"eventFilters":{"productGroups":["CUSTODY_SDK"],"patterns":["custody.*"],"include":["custody.vehicle.released"],"exclude":["credential.expired"]}}"#)
    }

    @Test func emptyListsAreLeftOut() {
        let request = SubscriptionRequest(url: "https://a.example/", secret: "x", filter: EventFilter(productGroups: ["CUSTODY_SDK"]))
        #expect(request.json.hasSuffix(#""eventFilters":{"productGroups":["CUSTODY_SDK"]}}"#))
        #expect(SubscriptionRequest(url: "https://a.example/", secret: "x", filter: .everything).json.hasSuffix(#""eventFilters":{}}"#))
    }

    @Test func urlIsEscaped() {
        let request = SubscriptionRequest(url: "https://a.example/\"x\\", secret: "x", filter: .everything)
        #expect(request.json.contains(#""url":"https://a.example/\"x\\""#))
    }

    @Test func secretsAre48AlphanumericCharactersAndDiffer() {
        var generator = SystemRandomNumberGenerator()
        let secrets = (0..<50).map { _ in SubscriptionRequest.makeSecret(using: &generator) }
        for secret in secrets {
            #expect(secret.utf8.count == 48)
            #expect(secret.utf8.allSatisfy { SubscriptionRequest.secretAlphabet.contains($0) })
        }
        #expect(Set(secrets).count == secrets.count)
    }

    /// A fixed generator gives a fixed secret: the alphabet is used without bias.
    struct Counting: RandomNumberGenerator {
        var state: UInt64 = 0
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            return state
        }
    }

    @Test func everyCharacterOfTheAlphabetCanAppear() {
        var generator = Counting()
        var seen = Set<UInt8>()
        for _ in 0..<200 { seen.formUnion(SubscriptionRequest.makeSecret(using: &generator).utf8) }
        #expect(seen.count == SubscriptionRequest.secretAlphabet.count)
    }

    @Test(arguments: [
        ("http://a.example/x", false), ("https://a.example/x", true), ("https://", false), ("ftp://a/x", false),
        ("https://a.example/x y", false), ("https://user@a.example/", false),
    ])
    func urlMustBeHTTPS(_ url: String, _ ok: Bool) {
        #expect((SubscriptionRequest.urlProblem(url) == nil) == ok)
    }

    @Test func filterFlagsAreCheckedWithTheRoutersRules() {
        let problems = SubscriptionRequest.problems(productGroups: ["CUSTODY_SDK", "bad-name"], patterns: ["", "custody.*"],
                                                    include: ["a.*"], exclude: ["x y"])
        #expect(problems.count == 4)
        #expect(problems[0].hasPrefix("--product-group \"bad-name\""))
        #expect(problems[1].hasPrefix("--pattern \"\": an empty pattern"))
        #expect(problems[2].contains("cannot hold '*'"))
        #expect(problems[3].hasPrefix("--exclude \"x y\""))
        #expect(SubscriptionRequest.problems(productGroups: ["CUSTODY_SDK"], patterns: ["custody.*"], include: ["a.b"], exclude: []).isEmpty)
    }
}
