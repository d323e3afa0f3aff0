/// The body of the guide's `POST /event-relay/subscriptions`: the endpoint, `HMAC_SHA256`, the
/// secret hookgate proposes, and the filters under the guide's camelCase names. Built and
/// checked here (pure); sent by `hookgate subscribe`.
public struct SubscriptionRequest: Sendable, Equatable {
    /// The endpoint the platform will POST to: `https://` only (the guide requires HTTPS).
    public var url: String
    public var secret: String
    public var filter: EventFilter

    /// Length of the proposed secret: well above the 32 bytes hookgate requires.
    public static let secretLength = 48
    /// Letters and digits only, so the secret survives any shell, file or secrets manager.
    static let secretAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)

    public init(url: String, secret: String, filter: EventFilter) {
        self.url = url
        self.secret = secret
        self.filter = filter
    }

    /// A secret drawn from `generator` (the system CSPRNG in the CLI: getrandom on Linux),
    /// without modulo bias.
    public static func makeSecret<G: RandomNumberGenerator>(using generator: inout G) -> String {
        let bytes = (0..<secretLength).map { _ in secretAlphabet[Int.random(in: 0..<secretAlphabet.count, using: &generator)] }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Everything wrong with the filters given on the command line, with the flag each is about;
    /// the same checks as `filter:` in the configuration.
    public static func problems(productGroups: [String], patterns: [String], include: [String], exclude: [String]) -> [String] {
        var found: [String] = []
        for g in productGroups where !EventFilter.isValidGroupName(g) {
            found.append("--product-group \"\(g)\": expected a group name of letters, digits and '_' (e.g. CUSTODY_SDK)")
        }
        for (flag, list, wildcards) in [("--pattern", patterns, true), ("--include", include, false), ("--exclude", exclude, false)] {
            for entry in list {
                if let message = EventFilter.problem(with: entry, wildcards: wildcards) { found.append("\(flag) \"\(entry)\": \(message)") }
            }
        }
        return found
    }

    /// Problems with the endpoint URL.
    public static func urlProblem(_ url: String) -> String? {
        guard let parsed = UpstreamURL(parsing: url), parsed.scheme == .https else {
            return "--url: expected an https:// URL (the platform delivers only to HTTPS endpoints), got \"\(url)\""
        }
        return nil
    }

    /// `eventFilters` as the guide names them; lists that are empty are left out (all empty:
    /// the guide's catch-all).
    public var eventFilters: [(name: String, values: [String])] {
        [("productGroups", filter.productGroups), ("patterns", filter.patterns), ("include", filter.include),
         ("exclude", filter.exclude)].filter { !$0.1.isEmpty }
    }

    /// The JSON body: `url`, `authType`, `authConfig.secret`, `eventFilters`.
    public var json: String {
        let filters = eventFilters.map { "\(JSONText.quoted($0.name)):[\($0.values.map(JSONText.quoted).joined(separator: ","))]" }
        return "{\"url\":\(JSONText.quoted(url)),\"authType\":\"HMAC_SHA256\",\"authConfig\":{\"secret\":\(JSONText.quoted(secret))},"
            + "\"eventFilters\":{\(filters.joined(separator: ","))}}"
    }
}
