/// What identifies an event for de-duplication within one route: CloudEvents says `source` + `id`
/// is unique, and both come from the signed body.
public struct EventKey: Hashable, Sendable {
    public var source: String
    public var id: String
    public init(source: String, id: String) {
        self.source = source
        self.id = id
    }
}
