// libFuzzer target: the CloudEvents envelope parser (CloudEventEnvelope.parse). When it accepts a
// body, Foundation's JSON parser must read the same id/source/type/specversion from it
// (differential oracle). Built by fuzz/run.
import Foundation
import HookgateCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEnvelope(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    let viaArray = CloudEventEnvelope.parse(bytes)
    let viaRaw = bytes.withUnsafeBytes { CloudEventEnvelope.parse($0) }
    switch (viaArray, viaRaw) {
    case (.success(let a), .success(let b)): precondition(a == b)
    case (.failure(let a), .failure(let b)): precondition(a.reason == b.reason && a.status == 400)
    default: preconditionFailure("the two parse entry points disagree")
    }
    guard case .success(let envelope) = viaArray else { return 0 }
    for field in [envelope.id, envelope.source, envelope.type] {
        precondition(!field.isEmpty && field.utf8.count <= CloudEventEnvelope.maximumFieldBytes)
        // CloudEvents 1.0: no controls (C0, DEL, C1) and no noncharacters in a String attribute.
        precondition(!field.unicodeScalars.contains { s in
            let v = s.value
            return v < 0x20 || (0x7F...0x9F).contains(v) || (0xFDD0...0xFDEF).contains(v) || v & 0xFFFE == 0xFFFE
        }, "a forbidden character was accepted")
    }
    // Foundation may refuse what hookgate accepts (it has its own limits, e.g. on numbers), but
    // when both accept they must see the same event -- up to U+FEFF: swift-corelibs-foundation's
    // JSONSerialization drops a U+FEFF at the start of a string or right after an escape
    // ({"id":"\u{FEFF}x"} reads as "x"), where hookgate, like RFC 8259 and Python's json, keeps it
    // (pinned in Tests/HookgateCoreTests/FuzzRegressionTests.swift).
    func same(_ foundation: Any?, _ ours: String) -> Bool {
        guard let theirs = foundation as? String else { return false }
        return theirs.unicodeScalars.filter { $0 != "\u{FEFF}" }.elementsEqual(ours.unicodeScalars.filter { $0 != "\u{FEFF}" })
    }
    if let object = try? JSONSerialization.jsonObject(with: Data(bytes), options: []),
       let dict = object as? [String: Any] {
        precondition(same(dict["id"], envelope.id), "id differs from Foundation's reading")
        precondition(same(dict["source"], envelope.source), "source differs from Foundation's reading")
        precondition(same(dict["type"], envelope.type), "type differs from Foundation's reading")
        precondition(dict["specversion"] as? String == "1.0", "specversion differs from Foundation's reading")
    }
    return 0
}
