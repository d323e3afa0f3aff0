// libFuzzer target: the RESP2 reply reader (RESPReader) with structural oracles: every reply it
// returns is within the limits, re-encoding and re-reading it gives the same value, and feeding
// the same bytes in two pieces gives the same replies and the same end. Built by fuzz/run.
import HookgateCore

private func encode(_ value: RESPValue) -> [UInt8] {
    func line(_ type: String, _ body: [UInt8]) -> [UInt8] { Array(type.utf8) + body + [0x0D, 0x0A] }
    switch value {
    case .simple(let b): return line("+", b)
    case .error(let b): return line("-", b)
    case .integer(let n): return line(":", Array(String(n).utf8))
    case .bulk(nil): return line("$", Array("-1".utf8))
    case .bulk(let b?): return line("$", Array(String(b.count).utf8)) + b + [0x0D, 0x0A]
    case .array(nil): return line("*", Array("-1".utf8))
    case .array(let items?): return line("*", Array(String(items.count).utf8)) + items.flatMap(encode)
    }
}

private func check(_ value: RESPValue, _ limits: RESPLimits, depth: Int) {
    switch value {
    case .simple(let b), .error(let b):
        precondition(!b.contains(0x0D) && !b.contains(0x0A) && b.count <= limits.maximumLineBytes)
    case .bulk(let b?):
        precondition(b.count <= limits.maximumBulkBytes)
    case .array(let items?):
        precondition(items.count <= limits.maximumElements && depth < limits.maximumDepth)
        for item in items { check(item, limits, depth: depth + 1) }
    default:
        break
    }
}

private func readAll(_ pieces: [ArraySlice<UInt8>], _ limits: RESPLimits) -> ([RESPValue], Bool) {
    var reader = RESPReader(limits: limits)
    var values: [RESPValue] = []
    var failed = false
    for piece in pieces {
        reader.append(piece)
        loop: while true {
            switch reader.next() {
            case .value(let v): values.append(v)
            case .needMore: break loop
            case .failed: failed = true; break loop
            }
        }
        if failed { break }
    }
    return (values, failed)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRESP(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    var limits = RESPLimits()
    limits.maximumBulkBytes = 256
    limits.maximumElements = 16
    limits.maximumDepth = 3
    limits.maximumLineBytes = 256
    limits.maximumReplyBytes = 2048
    let (whole, failedWhole) = readAll([bytes[...]], limits)
    for value in whole {
        check(value, limits, depth: 0)
        let again = readAll([encode(value)[...]], limits)
        precondition(again.0 == [value] && !again.1, "re-reading \(value) gave \(again)")
    }
    if bytes.count > 1 {
        let cut = Int(bytes[0]) % bytes.count
        let split = readAll([bytes[..<cut], bytes[cut...]], limits)
        precondition(split.0 == whole && split.1 == failedWhole, "split at \(cut) disagrees")
    }
    return 0
}
