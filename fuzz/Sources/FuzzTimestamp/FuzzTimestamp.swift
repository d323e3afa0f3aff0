// libFuzzer target: the X-VECU-Timestamp parser (TimestampWindow.parseTimestamp) and the window
// arithmetic at the extremes of Int64. Built by fuzz/run.
import HookgateCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTimestamp(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    let parsed = TimestampWindow.parseTimestamp(bytes)
    // the rule: 1-12 ASCII digits, no leading zero unless the value is "0"
    let digitsOnly = !bytes.isEmpty && bytes.count <= 12 && bytes.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    let expect = digitsOnly && (bytes[0] != 0x30 || bytes.count == 1)
    precondition((parsed != nil) == expect, "parseTimestamp accepted/refused wrongly")
    if let parsed {
        precondition(parsed >= 0 && Array(String(parsed).utf8) == bytes, "timestamp round trip")
    }
    // The window must not trap on any (timestamp, now, tolerance), and must agree with a wide
    // reference computation.
    var words = [Int64](repeating: 0, count: 3)
    for (i, b) in bytes.prefix(24).enumerated() { words[i / 8] = words[i / 8] << 8 | Int64(b) }
    let tolerance = words[2].magnitude % (24 * 3600 + 1)
    let window = TimestampWindow(toleranceSeconds: Int64(tolerance))
    for (ts, now) in [(words[0], words[1]), (parsed ?? 0, words[1]), (Int64.min, Int64.max), (Int64.max, Int64.min),
                      (words[0], Int64.min), (Int64.max, words[1])] {
        let inside = window.contains(ts, now: now)
        let wide = (now.subtractingReportingOverflow(ts).overflow) ? false
            : now.subtractingReportingOverflow(ts).partialValue.magnitude <= tolerance
        precondition(inside == wide, "window disagrees with the reference")
    }
    return 0
}
