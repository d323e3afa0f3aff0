// libFuzzer target: the PROXY protocol header parser (ProxyProtocolHeader.parse) and the IP address
// text it uses (IPAddressText), with structural oracles: a header is never longer than its input
// or the cap, its every prefix asks for more, and an address written out parses back to itself.
// Built by fuzz/run.
import HookgateCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProxyHeader(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    switch ProxyProtocolHeader.parse(bytes) {
    case .header(let length, let source):
        precondition(length > 0 && length <= bytes.count && length <= ProxyProtocolHeader.maximumBytes)
        let header = Array(bytes[0..<length])
        precondition(ProxyProtocolHeader.parse(header) == .header(length: length, source: source), "the header alone parses differently")
        precondition(ProxyProtocolHeader.parse(Array(header.dropLast())) == .needMore, "a cut header is not awaited")
        if header.first == 0x50 { precondition(length <= ProxyProtocolHeader.maximumV1Bytes && header.suffix(2) == [0x0D, 0x0A]) }
        if let source {
            let text = Array(source.address.utf8)
            let parsed = IPAddressText.parseIPv4(text) ?? IPAddressText.parseIPv6(text)
            precondition(parsed.map(IPAddressText.format) == source.address, "the source address does not round-trip")
        }
    case .needMore:
        precondition(bytes.count < ProxyProtocolHeader.maximumBytes, "needMore with a whole header's worth of bytes")
    case .invalid:
        break
    }
    // the input as address text
    if let v6 = IPAddressText.parseIPv6(bytes) {
        precondition(v6.count == 16)
        precondition(IPAddressText.parseIPv6(Array(IPAddressText.format(v6).utf8)) == v6, "IPv6 text does not round-trip")
    }
    if let v4 = IPAddressText.parseIPv4(bytes) {
        precondition(Array(IPAddressText.format(v4).utf8) == bytes, "IPv4 text is not canonical")
    }
    return 0
}
