/// Who the client is when hookgate sits behind proxies it trusts (`trusted_proxies`): the
/// rule of nginx's `real_ip_recursive on`.
public enum ClientAddress {
    /// The client of a request from `peer` with `headers`, and whether `peer` is trusted
    /// (then its `X-Forwarded-*`, `X-Real-IP` and `Forwarded` are kept).
    ///
    /// From a trusted peer, `X-Forwarded-For` (all its fields, in order) is walked from the right:
    /// trusted addresses are skipped, the first untrusted one is the client. An entry that is not
    /// a plain address stops the walk: the last address read (or the peer) is the client, since
    /// what lies to the left of garbage cannot be relied on. If every entry is trusted, the
    /// leftmost is the client.
    public static func resolve(peer: String, headers: HeaderList, trusted: [IPNetwork]) -> (client: String, peerTrusted: Bool) {
        guard !trusted.isEmpty, let peerAddress = IPAddress(parsing: peer),
              trusted.contains(where: { $0.contains(peerAddress) }) else { return (peer, false) }
        var entries: [String] = []
        for i in 0..<headers.count where headers.nameIs(i, "x-forwarded-for") {
            headers.withFieldBytes(i) { _, value in
                for element in value.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
                    var start = element.startIndex
                    var end = element.endIndex
                    while start < end, value[start] == 0x20 || value[start] == 0x09 { start += 1 }
                    while end > start, value[end - 1] == 0x20 || value[end - 1] == 0x09 { end -= 1 }
                    entries.append(String(decoding: value[start..<end], as: UTF8.self))
                }
            }
        }
        var client = peer
        for entry in entries.reversed() {
            guard let address = IPAddress(parsing: entry) else { break }
            client = entry
            if !trusted.contains(where: { $0.contains(address) }) { break }
        }
        return (client, true)
    }
}
