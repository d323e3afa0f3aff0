/// A destination's (or a subscription's) filter, in the platform guide's language: `exclude`,
/// `include`, `patterns` and `product_groups`. Event types are protocol tokens: compared as
/// bytes, never as Unicode text (two spellings that render alike are different types).
public struct EventFilter: Sendable, Equatable {
    /// Exact event types that are skipped, whatever else matches.
    public var exclude: [String]
    /// Exact event types that are delivered.
    public var include: [String]
    /// Wildcard patterns (`*` matches any run of characters, dots included).
    public var patterns: [String]
    /// Product group names, as the platform knows them (`CUSTODY_SDK`).
    public var productGroups: [String]
    /// What `productGroups` expand to (top-level `product_groups:`), as wildcard patterns.
    public var productGroupPatterns: [String]

    public init(exclude: [String] = [], include: [String] = [], patterns: [String] = [], productGroups: [String] = [],
                productGroupPatterns: [String] = []) {
        self.exclude = exclude
        self.include = include
        self.patterns = patterns
        self.productGroups = productGroups
        self.productGroupPatterns = productGroupPatterns
    }

    /// No filter: every event (the `upstream:` form, and a destination without `filter`).
    public static let everything = EventFilter()

    /// Which rule of the guide's order decided, in that order.
    public enum Decision: String, Sendable, Equatable {
        /// 1. an exact `exclude` match: skipped.
        case excluded
        /// 2. an exact `include` match: delivered.
        case included
        /// 3. a `patterns` match: delivered.
        case pattern
        /// 4. a match of a product group's expansion: delivered.
        case productGroup = "product_group"
        /// 5. `include`, `patterns` and `product_groups` all empty: delivered.
        case catchAll = "catch_all"
        /// Some of them were given and none matched: not delivered.
        case unmatched

        public var delivers: Bool { self != .excluded && self != .unmatched }
    }

    /// The guide's evaluation order, first decisive rule wins.
    public func decide(_ type: String) -> Decision {
        let t = Array(type.utf8)
        if exclude.contains(where: { $0.utf8.elementsEqual(t) }) { return .excluded }
        if include.contains(where: { $0.utf8.elementsEqual(t) }) { return .included }
        if patterns.contains(where: { Self.wildcard(Array($0.utf8), matches: t) }) { return .pattern }
        if productGroupPatterns.contains(where: { Self.wildcard(Array($0.utf8), matches: t) }) { return .productGroup }
        if include.isEmpty && patterns.isEmpty && productGroups.isEmpty { return .catchAll }
        return .unmatched
    }

    public func delivers(_ type: String) -> Bool { decide(type).delivers }

    /// `*` matches any run of bytes (dots included, possibly empty); every other byte matches
    /// itself. Iterative with one backtrack point, so no pattern can make it exponential.
    public static func wildcard(_ pattern: [UInt8], matches text: [UInt8]) -> Bool {
        let star = UInt8(ascii: "*")
        var p = 0, t = 0
        var starAt = -1, resumeAt = 0
        while t < text.count {
            if p < pattern.count && pattern[p] == star {
                starAt = p
                resumeAt = t
                p += 1
            } else if p < pattern.count && pattern[p] == text[t] {
                p += 1
                t += 1
            } else if starAt >= 0 {
                p = starAt + 1
                resumeAt += 1
                t = resumeAt
            } else {
                return false
            }
        }
        while p < pattern.count && pattern[p] == star { p += 1 }
        return p == pattern.count
    }

    /// The union of several filters, for one subscription that must carry every destination's
    /// events (`subscribe --from-config`). Every event some destination wants passes the union
    /// (it may pass a few no destination wants, which hookgate then answers as filtered): an
    /// exclusion survives only when no destination delivers that type, and when some destination
    /// takes everything the union does too (its lists stay empty).
    public static func union(_ filters: [EventFilter]) -> EventFilter {
        guard !filters.isEmpty else { return .everything }
        let catchAll = filters.contains { $0.include.isEmpty && $0.patterns.isEmpty && $0.productGroups.isEmpty }
        var result = EventFilter()
        for filter in filters {
            for type in filter.exclude where !result.exclude.contains(type) && !filters.contains(where: { $0.delivers(type) }) {
                result.exclude.append(type)
            }
        }
        if catchAll { return result }
        for filter in filters {
            for t in filter.include where !result.include.contains(t) { result.include.append(t) }
            for p in filter.patterns where !result.patterns.contains(p) { result.patterns.append(p) }
            for g in filter.productGroups where !result.productGroups.contains(g) { result.productGroups.append(g) }
            for p in filter.productGroupPatterns where !result.productGroupPatterns.contains(p) { result.productGroupPatterns.append(p) }
        }
        return result
    }

    /// Characters an event type or pattern may hold: printable ASCII without spaces, quotes or
    /// backslashes (CloudEvents types are such names; a look-alike from another script is refused).
    public static func isValidToken(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 256
            && text.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }
    }

    /// Checks one list entry; the message says what is wrong, nil when it is fine. `wildcards`
    /// is false for exact types (`include`, `exclude`), where a `*` would never match as meant.
    public static func problem(with entry: String, wildcards: Bool) -> String? {
        if entry.isEmpty { return wildcards ? "an empty pattern matches nothing" : "an empty event type matches nothing" }
        if !isValidToken(entry) { return "expected printable ASCII without spaces, quotes or backslashes (at most 256), got \"\(entry)\"" }
        if !wildcards && entry.utf8.contains(UInt8(ascii: "*")) { return "exact event types cannot hold '*'; use patterns for wildcards" }
        return nil
    }

    /// Product group names as the platform spells them: letters, digits and `_`.
    public static func isValidGroupName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64
            && name.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F }
    }
}
