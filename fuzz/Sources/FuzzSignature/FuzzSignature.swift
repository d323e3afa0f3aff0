// libFuzzer target: the X-VECU-Signature header parser (VecuSignatureScheme.parseSignature),
// Digest32(hex:) and a whole verify() over fuzzed headers and body. Built by fuzz/run.
import HookgateCore

private let secret = Array("fuzz-secret-0123456789abcdef0123456789abcdef".utf8)
private let scheme = VecuSignatureScheme(secrets: [secret], toleranceSeconds: 300)

private func isHex(_ c: UInt8) -> Bool {
    (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46)
}

private func lowerASCII(_ bytes: some Sequence<UInt8>) -> [UInt8] {
    bytes.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSignature(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 ? Array(UnsafeBufferPointer(start: data, count: size)) : []

    // Digest32(hex:) on raw bytes: accepts exactly 64 hex digits, and round-trips to lower case.
    let digest = Digest32(hex: bytes)
    let expectHex = bytes.count == 64 && bytes.allSatisfy(isHex)
    precondition((digest != nil) == expectHex, "Digest32(hex:) accepted/refused wrongly")
    if let digest { precondition(Array(digest.hex.utf8) == lowerASCII(bytes), "hex round trip") }

    // parseSignature on the bytes as text: "sha256=" + 64 hex, nothing else.
    let text = String(decoding: bytes, as: UTF8.self)
    let utf8 = Array(text.utf8)
    let parsed = VecuSignatureScheme.parseSignature(text)
    let expectSig = utf8.count == 71 && utf8.starts(with: Array("sha256=".utf8)) && utf8.dropFirst(7).allSatisfy(isHex)
    precondition((parsed != nil) == expectSig, "parseSignature accepted/refused wrongly")
    if let parsed { precondition(Array(parsed.hex.utf8) == lowerASCII(utf8.dropFirst(7)), "signature round trip") }

    // verify(): input = timestamp \n signature \n body. A signature we compute ourselves must pass
    // when the timestamp is fresh; the fuzzed one must never crash.
    let parts = bytes.split(separator: 0x0A, maxSplits: 2, omittingEmptySubsequences: false)
    if parts.count == 3 {
        let ts = String(decoding: parts[0], as: UTF8.self)
        let sig = String(decoding: parts[1], as: UTF8.self)
        let body = Array(parts[2])
        let now: Int64 = 1_700_000_000
        _ = scheme.verify(headers: HeaderList([("X-VECU-Timestamp", ts), ("X-VECU-Signature", sig)]), body: body, now: now)
        if let stamp = TimestampWindow.parseTimestamp(parts[0]) {
            let good = VecuSignatureScheme.sign(secret: secret, timestamp: stamp, body: body)
            let verdict = scheme.verify(headers: HeaderList([("X-VECU-Timestamp", ts), ("X-VECU-Signature", good)]),
                                        body: body, now: stamp)
            precondition(verdict == nil, "a correct signature was refused: \(String(describing: verdict))")
        }
    }
    return 0
}
