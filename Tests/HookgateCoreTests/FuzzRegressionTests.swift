import Testing
import HookgateCore

/// Inputs found by the libFuzzer targets in fuzz/ (fuzz/run), kept as regression tests. Each one
/// records what the fuzzer found and the behaviour that is correct.

/// FuzzEnvelope, crash-d183c1c4: a raw U+FEFF (EF BB BF) inside a string, right after escape
/// sequences. Foundation's JSONSerialization drops it (it strips U+FEFF at the start of each
/// unescaped run), which tripped the differential oracle; hookgate keeps it, as RFC 8259 and
/// Python's json do. The id is the dedup key, so dropping characters could merge two events.
@Test func envelopeKeepsByteOrderMarkCharacterInsideStrings() throws {
    let body: [UInt8] = Array(#"{"id":"\u0065vt\ud83d\ude00"#.utf8) + [0xEF, 0xBB, 0xBF]
        + Array(#"","source":"s\/x","type":"t\/","specversion":"1.0","data":[1,-2.5e+3,true,false,null,{"a":[]}]}"#.utf8)
    let envelope = try CloudEventEnvelope.parse(body).get()
    #expect(Array(envelope.id.unicodeScalars) == ["e", "v", "t", "\u{1F600}", "\u{FEFF}"])
    #expect(envelope.source == "s/x")
    #expect(envelope.type == "t/")

    // and at the start of a string: an id of U+FEFF + "x" is not the id "x"
    let leading = try CloudEventEnvelope.parse(Array(#"{"id":""#.utf8) + [0xEF, 0xBB, 0xBF]
        + Array(#"x","source":"s","type":"t","specversion":"1.0"}"#.utf8)).get()
    #expect(Array(leading.id.unicodeScalars) == ["\u{FEFF}", "x"])
    #expect(leading.id != "x")
}

/// FuzzHTTPHead, crash-18cb2e35: the chunk-size line "10 P.1TnT/1ne keep-aleep-alive". RFC 9112
/// allows only `chunk-size [BWS ";" chunk-ext]`: whitespace after the size may only lead to an
/// extension. (An earlier parseChunkSize read this as 16; the fuzzer found the line while the
/// rule was being tightened.) An extension needs a name: `10;` is refused (issue 9).
@Test(arguments: [
    ("10 P.1TnT/1ne keep-aleep-alive", nil),
    ("10 x", nil),
    ("10 \t ", 16),
    ("10 ; ext=1", 16),
    ("10;", nil),
    ("ffffffffffff", 0xFFFF_FFFF_FFFF),
    ("1000000000000", nil),
    (" 10", nil),
] as [(String, Int?)])
func chunkSizeLineFromFuzzer(line: String, expected: Int?) {
    let bytes = Array(line.utf8)
    #expect(bytes.withUnsafeBytes { HTTPRequestHead.parseChunkSize($0) } == expected)
}
