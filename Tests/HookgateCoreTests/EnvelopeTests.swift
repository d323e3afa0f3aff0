import Testing
@testable import HookgateCore

/// The CloudEvents envelope reader: strict JSON, the four required string fields, and bounds.

/// `{"id":…,"source":…,"type":…,"specversion":…<extra>}`, each value given as raw JSON text
/// (nil leaves the member out).
private func envelopeJSON(
    id: String? = #""evt-1""#,
    source: String? = #""vecu.custody-service""#,
    type: String? = #""custody.vehicle.released""#,
    specversion: String? = #""1.0""#,
    extra: String = ""
) -> [UInt8] {
    let members = [("id", id), ("source", source), ("type", type), ("specversion", specversion)]
        .compactMap { name, value in value.map { "\"\(name)\":\($0)" } }
    return Array(("{" + members.joined(separator: ",") + extra + "}").utf8)
}

/// The envelope with `data` set to raw JSON text.
private func withData(_ data: String) -> [UInt8] { envelopeJSON(extra: ",\"data\":\(data)") }

/// The envelope with `data` holding `raw` bytes inside a string, wrapped in `around` JSON text.
private func withRawData(_ raw: [UInt8], around: (String, String) = ("\"", "\"")) -> [UInt8] {
    envelopeJSON().dropLast() + Array(",\"data\":\(around.0)".utf8) + raw + Array("\(around.1)}".utf8)
}

/// The envelope with `id` given as raw bytes between the quotes.
private func withRawID(_ raw: [UInt8]) -> [UInt8] {
    Array(#"{"id":""#.utf8) + raw + Array(#"","source":"s","type":"t","specversion":"1.0"}"#.utf8)
}

private func parse(_ bytes: [UInt8]) -> Result<CloudEventEnvelope, Rejection> { CloudEventEnvelope.parse(bytes) }

struct InvalidEnvelope: Sendable, CustomTestStringConvertible {
    var testDescription: String
    var body: [UInt8]
    /// Part of the message that says why.
    var because: String
}

private func bad(_ label: String, _ body: [UInt8], _ because: String) -> InvalidEnvelope {
    InvalidEnvelope(testDescription: label, body: body, because: because)
}

private func bad(_ label: String, _ body: String, _ because: String) -> InvalidEnvelope {
    InvalidEnvelope(testDescription: label, body: Array(body.utf8), because: because)
}

private let guideExample = """
{
  "id": "01JA4KXYZ...",
  "source": "vecu.custody-service",
  "type": "custody.vehicle.released",
  "specversion": "1.0",
  "time": "2025-01-15T14:30:00Z",
  "datacontenttype": "application/json",
  "data": {
    "_platform": {
      "correlationId": "corr_abc123",
      "actor": { "actorId": "driver_456", "actorType": "user" }
    },
    "vin": "5XXXX00000XEXMPL0"
  }
}
"""

/// `depth` containers in all, counting the top-level object, with `leaf` innermost.
private func nested(depth: Int, leaf: String = "1", array: Bool = true) -> [UInt8] {
    let inner = depth - 1
    let open = array ? String(repeating: "[", count: inner) : String(repeating: #"{"a":"#, count: inner)
    let close = String(repeating: array ? "]" : "}", count: inner)
    return withData(open + leaf + close)
}

private let invalidEnvelopes: [InvalidEnvelope] = [
    // Required fields.
    bad("id missing", envelopeJSON(id: nil), #"missing "id""#),
    bad("source missing", envelopeJSON(source: nil), #"missing "source""#),
    bad("type missing", envelopeJSON(type: nil), #"missing "type""#),
    bad("specversion missing", envelopeJSON(specversion: nil), #"missing "specversion""#),
    bad("empty object", "{}", #"missing "id""#),
    bad("key differs in case", #"{"ID":"a","source":"s","type":"t","specversion":"1.0"}"#, #"missing "id""#),
    bad("id nested, not top level", #"{"data":{"id":"a"},"source":"s","type":"t","specversion":"1.0"}"#, #"missing "id""#),
    // Wrong types.
    bad("id is a number", envelopeJSON(id: "1"), #""id" must be a string"#),
    bad("id is null", envelopeJSON(id: "null"), #""id" must be a string"#),
    bad("id is an object", envelopeJSON(id: #"{"v":"a"}"#), #""id" must be a string"#),
    bad("id is an array", envelopeJSON(id: #"["a"]"#), #""id" must be a string"#),
    bad("id is a bool", envelopeJSON(id: "true"), #""id" must be a string"#),
    bad("source is a number", envelopeJSON(source: "7"), #""source" must be a string"#),
    bad("type is false", envelopeJSON(type: "false"), #""type" must be a string"#),
    bad("specversion is the number 1.0", envelopeJSON(specversion: "1.0"), #""specversion" must be a string"#),
    // Empty and wrong values.
    bad("id empty", envelopeJSON(id: #""""#), #""id" must not be empty"#),
    bad("source empty", envelopeJSON(source: #""""#), #""source" must not be empty"#),
    bad("type empty", envelopeJSON(type: #""""#), #""type" must not be empty"#),
    bad("specversion empty", envelopeJSON(specversion: #""""#), #""specversion" must not be empty"#),
    bad("specversion 0.3", envelopeJSON(specversion: #""0.3""#), #""specversion" must be "1.0""#),
    bad("specversion 1.0 with a space", envelopeJSON(specversion: #""1.0 ""#), #""specversion" must be "1.0""#),
    bad("specversion 1", envelopeJSON(specversion: #""1""#), #""specversion" must be "1.0""#),
    // Not an object.
    bad("array", #"[{"id":"a","source":"s","type":"t","specversion":"1.0"}]"#, "top level must be a JSON object"),
    bad("string", #""{}""#, "top level must be a JSON object"),
    bad("number", "42", "top level must be a JSON object"),
    bad("null", "null", "top level must be a JSON object"),
    bad("empty body", "", "top level must be a JSON object"),
    bad("whitespace only", " \t\r\n ", "top level must be a JSON object"),
    bad("unterminated object", #"{"id":"a""#, "unexpected end of JSON"),
    bad("lone brace", "{", "unexpected end of JSON"),
    // Encoding.
    bad("byte order mark", [0xEF, 0xBB, 0xBF] + envelopeJSON(), "byte order mark"),
    bad("0xFF in id", withRawID([0x61, 0xFF, 0x62]), "invalid UTF-8"),
    bad("0xFF in skipped data", withRawData([0x61, 0xFF, 0x62]), "invalid UTF-8"),
    bad("overlong slash C0 AF in id", withRawID([0xC0, 0xAF]), "invalid UTF-8"),
    bad("overlong C1 81 in id", withRawID([0xC1, 0x81]), "invalid UTF-8"),
    bad("overlong 3-byte E0 80 AF in id", withRawID([0xE0, 0x80, 0xAF]), "invalid UTF-8"),
    bad("overlong 4-byte F0 80 80 AF in id", withRawID([0xF0, 0x80, 0x80, 0xAF]), "invalid UTF-8"),
    bad("lone continuation byte in id", withRawID([0x61, 0x80]), "invalid UTF-8"),
    bad("encoded surrogate ED A0 80 in id", withRawID([0xED, 0xA0, 0x80]), "invalid UTF-8"),
    bad("encoded surrogate ED BF BF in id", withRawID([0xED, 0xBF, 0xBF]), "invalid UTF-8"),
    bad("beyond U+10FFFF F4 90 80 80 in id", withRawID([0xF4, 0x90, 0x80, 0x80]), "invalid UTF-8"),
    bad("F5 lead byte in id", withRawID([0xF5, 0x80, 0x80, 0x80]), "invalid UTF-8"),
    bad("truncated sequence before the quote", withRawID([0xE2, 0x82]), "invalid UTF-8"),
    bad("truncated sequence at the end of the body", Array(#"{"id":"a"#.utf8) + [0xE2], "invalid UTF-8"),
    bad("encoded surrogate in a key", Array(#"{""#.utf8) + [0xED, 0xA0, 0x80] + Array(#"":1,"#.utf8) + envelopeJSON().dropFirst(),
        "invalid UTF-8"),
    bad("encoded surrogate deep in data", withRawData([0xED, 0xA0, 0x80], around: (#"{"a":["x"#, #""]}"#)), "invalid UTF-8"),
    bad("overlong encoding deep in data", withRawData([0xC0, 0x80], around: (#"[{"k":""#, #""}]"#)), "invalid UTF-8"),
    // Structure.
    bad("trailing data after the object", envelopeJSON() + Array(" x".utf8), "unexpected data after the JSON object"),
    bad("second object", envelopeJSON() + envelopeJSON(), "unexpected data after the JSON object"),
    bad("trailing NUL", envelopeJSON() + [0], "unexpected data after the JSON object"),
    bad("trailing comma at the top level", envelopeJSON(extra: ","), "unexpected character"),
    bad("trailing comma in an array", withData("[1,2,]"), "unexpected character"),
    bad("trailing comma in an object", withData(#"{"a":1,}"#), "unexpected character"),
    bad("missing comma", #"{"id":"a" "source":"s","type":"t","specversion":"1.0"}"#, "unexpected character"),
    bad("missing colon", #"{"id" "a","source":"s","type":"t","specversion":"1.0"}"#, "unexpected character"),
    bad("number as key", #"{1:2,"id":"a","source":"s","type":"t","specversion":"1.0"}"#, "unexpected character"),
    bad("single-quoted string", envelopeJSON(id: "'a'"), "unexpected character"),
    bad("unterminated array in data", Array(#"{"id":"a","data":[1,2"#.utf8), "unexpected end of JSON"),
    bad("comment", envelopeJSON(extra: " /* c */"), "unexpected character"),
    // Duplicates.
    bad("duplicate id", envelopeJSON(extra: #","id":"evt-2""#), #""id" appears more than once"#),
    bad("duplicate id with the same value", envelopeJSON(extra: #","id":"evt-1""#), #""id" appears more than once"#),
    bad("duplicate id spelled with an escape", envelopeJSON(extra: #","\u0069d":"evt-2""#), #""id" appears more than once"#),
    bad("duplicate id, second one not a string", envelopeJSON(extra: #","id":1"#), #""id" appears more than once"#),
    bad("duplicate type", envelopeJSON(extra: #","type":"other""#), #""type" appears more than once"#),
    bad("duplicate source", envelopeJSON(extra: #","source":"other""#), #""source" appears more than once"#),
    bad("duplicate specversion", envelopeJSON(extra: #","specversion":"1.0""#), #""specversion" appears more than once"#),
    // Bounds.
    bad("nesting one beyond maximumDepth (arrays)", nested(depth: CloudEventEnvelope.maximumDepth + 1), "nested deeper than"),
    bad("nesting one beyond maximumDepth (objects)", nested(depth: CloudEventEnvelope.maximumDepth + 1, array: false),
        "nested deeper than"),
    bad("nesting far beyond maximumDepth", withData(String(repeating: "[", count: 100_000)), "nested deeper than"),
    bad("id one byte longer than maximumFieldBytes",
        envelopeJSON(id: "\"" + String(repeating: "a", count: CloudEventEnvelope.maximumFieldBytes + 1) + "\""),
        "longer than \(CloudEventEnvelope.maximumFieldBytes) bytes"),
    bad("id over the limit in bytes, not characters",
        envelopeJSON(id: "\"" + String(repeating: "é", count: CloudEventEnvelope.maximumFieldBytes / 2 + 1) + "\""),
        "longer than"),
    bad("source longer than maximumFieldBytes",
        envelopeJSON(source: "\"" + String(repeating: "s", count: CloudEventEnvelope.maximumFieldBytes + 1) + "\""),
        #""source" is longer than"#),
    bad("type longer than maximumFieldBytes",
        envelopeJSON(type: "\"" + String(repeating: "t", count: CloudEventEnvelope.maximumFieldBytes + 1) + "\""),
        #""type" is longer than"#),
    // Escapes and characters.
    bad("lone high surrogate escape", envelopeJSON(id: #""\uD83D""#), "unpaired surrogate"),
    bad("high surrogate then a letter", envelopeJSON(id: #""\uD83Dx""#), "unpaired surrogate"),
    bad("lone low surrogate escape", envelopeJSON(id: #""\uDE00""#), "unpaired surrogate"),
    bad("high surrogate then a non-surrogate escape", envelopeJSON(id: #""\uD83D\u0041""#), "unpaired surrogate"),
    bad("two high surrogates", envelopeJSON(id: #""\uD83D\uD83D""#), "unpaired surrogate"),
    bad("reversed surrogate pair", envelopeJSON(id: #""\uDE00\uD83D""#), "unpaired surrogate"),
    bad("high surrogate then a short escape", envelopeJSON(id: #""\uD83D\u12""#), "\\u escape"),
    bad("lone surrogate in skipped data", withData(#""\uDFFF""#), "unpaired surrogate"),
    bad("lone surrogate in a key", envelopeJSON(extra: #","\uD800":1"#), "unpaired surrogate"),
    bad("unknown escape", envelopeJSON(id: #""a\xb""#), "invalid escape"),
    bad("escaped single quote", envelopeJSON(id: #""a\'b""#), "invalid escape"),
    bad("short unicode escape", envelopeJSON(id: #""\u12""#), "invalid \\u escape"),
    bad("non-hex unicode escape", envelopeJSON(id: #""\u12G4""#), "invalid \\u escape"),
    bad("escape at the end of the body", Array(#"{"id":"\"#.utf8), "unterminated string"),
    bad("raw tab in id", envelopeJSON(id: "\"a\tb\""), "control character"),
    bad("raw newline in id", envelopeJSON(id: "\"a\nb\""), "control character"),
    bad("raw NUL in id", withRawID([0x61, 0x00]), "control character"),
    bad("raw 0x1F in skipped data", withData("\"a\u{1F}\""), "control character"),
    bad("raw newline in a key", envelopeJSON(extra: ",\"a\nb\":1"), "control character"),
    // Number grammar.
    bad("leading zero", withData("01"), "unexpected character"),
    bad("negative leading zero", withData("-01"), "unexpected character"),
    bad("trailing dot", withData("1."), "invalid number"),
    bad("leading dot", withData(".5"), "unexpected character"),
    bad("lone minus", withData("-"), "invalid number"),
    bad("double minus", withData("--1"), "invalid number"),
    bad("plus sign", withData("+1"), "unexpected character"),
    bad("exponent without digits", withData("1e"), "invalid number"),
    bad("exponent sign without digits", withData("1e+"), "invalid number"),
    bad("exponent after a dot", withData("1.e5"), "invalid number"),
    bad("hex number", withData("0x1F"), "unexpected character"),
    bad("NaN", withData("NaN"), "unexpected character"),
    bad("Infinity", withData("Infinity"), "unexpected character"),
    bad("minus Infinity", withData("-Infinity"), "invalid number"),
    // Literals.
    bad("truncated true", withData("tru"), "invalid literal"),
    bad("capitalised True", withData("True"), "unexpected character"),
    bad("truncated null at the end", Array(#"{"data":nul"#.utf8), "unexpected end of JSON"),
    bad("nullx", withData("nullx"), "unexpected character"),
]

@Suite("CloudEvents envelope")
struct EnvelopeTests {
    @Test func guideExampleParses() {
        #expect(parse(Array(guideExample.utf8)) == .success(CloudEventEnvelope(
            id: "01JA4KXYZ...", source: "vecu.custody-service", type: "custody.vehicle.released")))
    }

    @Test func sampleBodyParses() {
        #expect(parse(sampleBody) == .success(CloudEventEnvelope(
            id: "evt-1", source: "vecu.custody-service", type: "custody.vehicle.released")))
    }

    @Test(arguments: invalidEnvelopes)
    func rejected(_ c: InvalidEnvelope) {
        switch parse(c.body) {
        case .success(let envelope):
            Issue.record("accepted as \(envelope)")
        case .failure(let rejection):
            #expect(rejection.reason == .envelopeInvalid)
            #expect(rejection.status == 400)
            #expect(rejection.message.contains(c.because), "message: \(rejection.message)")
        }
    }

    struct Accepted: Sendable, CustomTestStringConvertible {
        var testDescription: String
        var body: [UInt8]
        var id = "evt-1"
        var source = "vecu.custody-service"
        var type = "custody.vehicle.released"
    }

    static let acceptedCases: [Accepted] = [
        .init(testDescription: "members in another order, extra members",
              body: Array(#"{"specversion":"1.0","data":null,"type":"custody.vehicle.released","time":"x","source":"vecu.custody-service","id":"evt-1"}"#.utf8)),
        .init(testDescription: "whitespace everywhere",
              body: Array(" \r\n\t{ \"id\" : \"evt-1\" ,\n\"source\"\t:\"vecu.custody-service\",\"type\":\"custody.vehicle.released\" , \"specversion\" : \"1.0\" } \n".utf8)),
        .init(testDescription: "escaped quote in id", body: envelopeJSON(id: #""a\"b""#), id: "a\"b"),
        .init(testDescription: "every printable simple escape", body: envelopeJSON(id: #""\\\/\"""#), id: "\\/\""),
        .init(testDescription: "control escapes in data", body: withData(#""\b\f\n\r\t\u0000\u0085\uFFFE""#)),
        .init(testDescription: "unicode escapes", body: envelopeJSON(id: #""\u00e9\u00C9\u20AC""#), id: "éÉ€"),
        .init(testDescription: "valid surrogate pair", body: envelopeJSON(id: #""\uD83D\uDE00""#), id: "😀"),
        .init(testDescription: "lower-case surrogate pair", body: envelopeJSON(id: #""\ud83d\ude00x""#), id: "😀x"),
        .init(testDescription: "raw UTF-8 of every length", body: envelopeJSON(id: "\"aé€😀\u{10FFFD}\""), id: "aé€😀\u{10FFFD}"),
        .init(testDescription: "escaped keys match", body: Array(#"{"\u0069d":"x","sourc\u0065":"s","type":"t","specversion":"1\u002e0"}"#.utf8),
              id: "x", source: "s", type: "t"),
        .init(testDescription: "DEL and C1 controls are fine in data", body: withData("\"a\u{7F}\u{85}\u{9F}\"")),
        .init(testDescription: "duplicate non-envelope member", body: envelopeJSON(extra: #","data":1,"data":2"#)),
        .init(testDescription: "escaped surrogate pair in skipped data", body: withData(#""\uD83D\uDE00""#)),
        .init(testDescription: "number -0.5e+10", body: withData("-0.5e+10")),
        .init(testDescription: "numbers of every shape", body: withData("[0,-0,10,1.25,1E5,1e-3,2.5E+07,-0.0]")),
        .init(testDescription: "literals", body: withData(#"{"t":true,"f":false,"n":null}"#)),
        .init(testDescription: "empty containers", body: withData(#"[{},[],"",{"a":[]}]"#)),
        .init(testDescription: "nesting exactly at maximumDepth (arrays)", body: nested(depth: CloudEventEnvelope.maximumDepth)),
        .init(testDescription: "nesting exactly at maximumDepth (objects)", body: nested(depth: CloudEventEnvelope.maximumDepth, array: false)),
        .init(testDescription: "id exactly maximumFieldBytes long",
              body: envelopeJSON(id: "\"" + String(repeating: "a", count: CloudEventEnvelope.maximumFieldBytes) + "\""),
              id: String(repeating: "a", count: CloudEventEnvelope.maximumFieldBytes)),
        .init(testDescription: "id of maximumFieldBytes in two-byte characters",
              body: envelopeJSON(id: "\"" + String(repeating: "é", count: CloudEventEnvelope.maximumFieldBytes / 2) + "\""),
              id: String(repeating: "é", count: CloudEventEnvelope.maximumFieldBytes / 2)),
        .init(testDescription: "long data string is not bounded by maximumFieldBytes",
              body: withData("\"" + String(repeating: "x", count: 4 * CloudEventEnvelope.maximumFieldBytes) + "\"")),
    ]

    /// CloudEvents 1.0 String attributes exclude the C0 controls, DEL and the C1 controls, and the
    /// noncharacters (U+FDD0–U+FDEF, U+xFFFE, U+xFFFF in every plane): raw or escaped, in each of
    /// the four attributes, they are refused with a message naming the attribute.
    static let forbiddenScalars: [UInt32] = [
        0x00, 0x01, 0x08, 0x09, 0x0A, 0x0D, 0x1F, 0x7F, 0x80, 0x85, 0x9F,
        0xFDD0, 0xFDE7, 0xFDEF, 0xFFFE, 0xFFFF, 0x1FFFE, 0x1FFFF, 0x2FFFE, 0x7FFFF, 0xEFFFE, 0x10FFFE, 0x10FFFF,
    ]
    /// Their neighbours, which are allowed.
    static let allowedScalars: [UInt32] = [0x20, 0x7E, 0xA0, 0xFDCF, 0xFDF0, 0xFFFD, 0x10000, 0x1FFFD, 0x20000, 0x10FFFD, 0x2028]
    static let attributes = ["id", "source", "type", "specversion"]

    /// `scalar` as JSON: its raw UTF-8 bytes, or a `\u` escape (a surrogate pair above U+FFFF).
    static func json(_ scalar: UInt32, escaped: Bool) -> String {
        guard escaped else { return String(Unicode.Scalar(scalar)!) }
        func hex(_ v: UInt32) -> String { "\\u" + String(repeating: "0", count: 4 - String(v, radix: 16).count) + String(v, radix: 16) }
        guard scalar >= 0x10000 else { return hex(scalar) }
        let v = scalar - 0x10000
        return hex(0xD800 + (v >> 10)) + hex(0xDC00 + (v & 0x3FF))
    }

    /// The envelope with `attribute` set to `"a" + text + "b"` (specversion: `"1.0" + text`).
    static func envelope(_ attribute: String, _ text: String) -> [UInt8] {
        let value = attribute == "specversion" ? "\"1.0\(text)\"" : "\"a\(text)b\""
        switch attribute {
        case "id": return envelopeJSON(id: value)
        case "source": return envelopeJSON(source: value)
        case "type": return envelopeJSON(type: value)
        default: return envelopeJSON(specversion: value)
        }
    }

    @Test(arguments: attributes, [false, true])
    func forbiddenCharactersAreRefused(_ attribute: String, _ escaped: Bool) {
        for scalar in Self.forbiddenScalars {
            let body = Self.envelope(attribute, Self.json(scalar, escaped: escaped))
            guard case .failure(let rejection) = parse(body) else {
                Issue.record("U+\(String(scalar, radix: 16)) accepted in \(attribute)")
                continue
            }
            #expect(rejection.reason == .envelopeInvalid)
            #expect(rejection.message.contains("\"\(attribute)\""), "U+\(String(scalar, radix: 16)): \(rejection.message)")
        }
    }

    @Test(arguments: attributes.dropLast(), [false, true])
    func neighboursOfForbiddenCharactersAreAccepted(_ attribute: String, _ escaped: Bool) {
        for scalar in Self.allowedScalars {
            let text = "a" + String(Unicode.Scalar(scalar)!) + "b"
            let body = Self.envelope(attribute, Self.json(scalar, escaped: escaped))
            let expected = CloudEventEnvelope(id: attribute == "id" ? text : "evt-1",
                                              source: attribute == "source" ? text : "vecu.custody-service",
                                              type: attribute == "type" ? text : "custody.vehicle.released")
            #expect(parse(body) == .success(expected), "U+\(String(scalar, radix: 16)) in \(attribute)")
        }
    }

    @Test(arguments: attributes, [#"\ud800"#, #"\uDBFF"#, #"\udc00"#, #"\uDFFF"#, #"\ud800\u0041"#, #"\udc00\ud800"#])
    func loneSurrogateEscapesNameTheAttribute(_ attribute: String, _ escape: String) {
        guard case .failure(let rejection) = parse(Self.envelope(attribute, escape)) else {
            Issue.record("\(escape) accepted in \(attribute)")
            return
        }
        #expect(rejection.reason == .envelopeInvalid)
        #expect(rejection.message.contains("\"\(attribute)\"") && rejection.message.contains("unpaired surrogate"), "\(rejection.message)")
    }

    @Test(arguments: acceptedCases)
    func accepted(_ c: Accepted) {
        #expect(parse(c.body) == .success(CloudEventEnvelope(id: c.id, source: c.source, type: c.type)))
    }

    @Test func oneMegabyteStringInDataIsAccepted() {
        let big = String(repeating: "0123456789abcdef", count: 65_536)  // 1 MiB
        let body = withData("{\"blob\":\"\(big)\",\"more\":[\"\(big)\"]}")
        #expect(body.count > 2 * 1_048_576)
        #expect((try? parse(body).get())?.id == "evt-1")
    }

    @Test func parsesFromARawBuffer() {
        let result = sampleBody.withUnsafeBytes { CloudEventEnvelope.parse($0) }
        #expect((try? result.get())?.type == "custody.vehicle.released")
    }

    /// Strings are skipped 8 bytes at a time up to the first byte needing a check: whatever its
    /// offset in the word (and in runs shorter than a word), a control character, a stray byte
    /// or a truncated sequence is still refused, and a valid sequence or escape still accepted.
    @Test(arguments: 0..<18)
    func everyOffsetOfASpecialByteInAStringIsChecked(_ offset: Int) {
        let plain = Array(repeating: UInt8(ascii: "a"), count: offset)
        let tail = Array(repeating: UInt8(ascii: "z"), count: 11)
        for raw: [UInt8] in [[0x00], [0x1F], [0x0A], [0x80], [0xFF], [0xC3], [0xE2, 0x82], [0xED, 0xA0, 0x80], [0xC0, 0xAF]] {
            if case .success = parse(withRawData(plain + raw + tail)) {
                Issue.record("accepted \(raw) after \(offset) plain bytes")
            }
        }
        for (raw, decoded) in [([UInt8(0xC3), 0xA9], "é"), ([0xE2, 0x82, 0xAC], "€"), ([0xF0, 0x9F, 0x98, 0x80], "😀"),
                               (Array(#"\n"#.utf8), "\n"), (Array(#"\""#.utf8), "\""), (Array(#"\u0041"#.utf8), "A"),
                               ([0x7E], "~"), ([0x20], " ")] {
            let id = String(decoding: plain, as: UTF8.self) + decoded + String(decoding: tail, as: UTF8.self)
            let got = parse(withRawID(plain + raw + tail))
            if decoded == "\n" {  // decoded, then refused: CloudEvents forbids control characters in the id
                if case .success = got { Issue.record("accepted a newline in the id after \(offset)") }
            } else {
                #expect(got == .success(CloudEventEnvelope(id: id, source: "s", type: "t")), "\(raw) after \(offset)")
            }
            #expect((try? parse(withRawData(plain + raw + tail)).get())?.id == "evt-1", "\(raw) in data after \(offset)")
        }
        // an unterminated string ending at every offset
        let open = Array(#"{"id":"x","source":"s","type":"t","specversion":"1.0","data":""#.utf8) + plain
        if case .success = parse(open) { Issue.record("accepted an unterminated string of \(offset) bytes") }
    }

    /// Every proper prefix of a valid body is refused (no read past the end, no partial accept).
    @Test func everyTruncationIsRejected() {
        let body = Array(guideExample.utf8)
        for length in 0..<body.count {
            let prefix = Array(body[..<length])
            if case .success = parse(prefix) { Issue.record("accepted a \(length)-byte prefix") }
        }
    }
}
