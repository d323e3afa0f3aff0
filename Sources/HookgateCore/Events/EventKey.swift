/// What identifies an event for de-duplication within one route: CloudEvents says `source` + `id`
/// is unique, and both come from the signed body.
///
/// Two keys are the same only when their bytes are the same. Swift's `String` equality is
/// canonical equivalence (NFC `é` equals NFD `e` + U+0301, `K` equals U+212A KELVIN SIGN), which
/// would merge two distinct events; so equality and hashing here are over the UTF-8 bytes.
public struct EventKey: Hashable, Sendable {
    public var source: String
    public var id: String
    public init(source: String, id: String) {
        self.source = source
        self.id = id
    }

    public static func == (lhs: EventKey, rhs: EventKey) -> Bool {
        lhs.id.hasSameBytes(as: rhs.id) && lhs.source.hasSameBytes(as: rhs.source)
    }

    /// The source's length, then both byte runs, each fed to the hasher in one piece.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(source.utf8.count)
        source.withUTF8Bytes { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        id.withUTF8Bytes { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}
