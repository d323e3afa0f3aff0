/// The fields of a CloudEvents 1.0 JSON envelope that hookgate relies on, read from a body whose
/// signature has already been checked.
public struct CloudEventEnvelope: Sendable, Equatable {
    public var id: String
    public var source: String
    public var type: String

    public init(id: String, source: String, type: String) {
        self.id = id
        self.source = source
        self.type = type
    }

    /// Longest accepted `id`, `source` or `type`, in UTF-8 bytes: each delivered id is kept in
    /// memory, so its size is bounded.
    public static let maximumFieldBytes = 1024
    /// Deepest accepted nesting of arrays and objects anywhere in the body.
    public static let maximumDepth = 128

    /// Parses `body` as strict JSON (RFC 8259: UTF-8 without BOM, no trailing data, no lone
    /// surrogates) whose top level is an object with string `id`, `source`, `type` (each
    /// non-empty) and `specversion` equal to "1.0". One of these keys appearing twice is an error,
    /// because two readers of the same body could then see two different events.
    private static let keys = ["id", "source", "type", "specversion"]
    private static let envelopeKeys = JSONScanner.Keys(keys)

    public static func parse(_ body: UnsafeRawBufferPointer) -> Result<CloudEventEnvelope, Rejection> {
        var scanner = JSONScanner(body)
        do {
            return try scanner.scanTopLevelObject(keys: envelopeKeys) { values in
                // `values` holds the keys' values in the order of `keys`.
                func text(_ k: Int) throws -> String {
                    let key = keys[k]
                    guard let value = values[k] else { throw JSONScanner.Failure("missing \"\(key)\"") }
                    guard case .string(let s) = value else { throw JSONScanner.Failure("\"\(key)\" must be a string") }
                    guard !s.isEmpty else { throw JSONScanner.Failure("\"\(key)\" must not be empty") }
                    guard s.utf8.count <= maximumFieldBytes else {
                        throw JSONScanner.Failure("\"\(key)\" is longer than \(maximumFieldBytes) bytes")
                    }
                    if let forbidden = firstForbiddenScalar(in: s) {
                        throw JSONScanner.Failure("\"\(key)\" contains \(forbidden), which CloudEvents 1.0 does not allow in a string")
                    }
                    return s
                }
                let id = try text(0)
                let source = try text(1)
                let type = try text(2)
                guard try text(3).hasSameBytes(as: "1.0") else { throw JSONScanner.Failure("\"specversion\" must be \"1.0\"") }
                return .success(CloudEventEnvelope(id: id, source: source, type: type))
            }
        } catch let failure as JSONScanner.Failure {
            return .failure(Rejection(.envelopeInvalid, "body is not a CloudEvents 1.0 JSON envelope: \(failure.message)"))
        } catch {
            return .failure(Rejection(.envelopeInvalid, "body is not a CloudEvents 1.0 JSON envelope"))
        }
    }

    public static func parse(_ body: [UInt8]) -> Result<CloudEventEnvelope, Rejection> {
        body.withUnsafeBytes { parse($0) }
    }

    /// The first character CloudEvents 1.0 forbids in a String attribute, as `U+XXXX`: the C0 and
    /// C1 controls, DEL and the noncharacters (U+FDD0–U+FDEF and the last two of every plane).
    /// Escapes are already decoded here, so `\u0000` and a raw U+0085 are both found; lone
    /// surrogates never get this far (the scanner refuses them).
    static func firstForbiddenScalar(in s: String) -> String? {
        // Ids and types are nearly always printable ASCII: one pass over the bytes.
        if s.withUTF8Bytes({ PlainBytes.allPlain(UnsafeRawBufferPointer($0)) }) { return nil }
        for scalar in s.unicodeScalars {
            let v = scalar.value
            if v < 0x20 || (0x7F...0x9F).contains(v) || (0xFDD0...0xFDEF).contains(v) || v & 0xFFFE == 0xFFFE {
                let hex = String(v, radix: 16, uppercase: true)
                return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
            }
        }
        return nil
    }
}

/// A validating JSON reader that keeps only the top-level values it is asked for. Everything
/// else is checked for well-formedness and skipped without building values.
struct JSONScanner {
    struct Failure: Error {
        var message: String
        init(_ message: String) { self.message = message }
    }

    enum TopLevelValue: Equatable {
        case string(String)
        case other
    }

    private let bytes: UnsafeRawBufferPointer
    private var i = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// Validates the whole text and returns, for each of `keys`, the top-level value it names (nil
    /// when absent). Keys are compared as decoded bytes, so `"\u0069d"` is `id`.
    /// The top-level keys to keep, with their bytes computed once.
    struct Keys {
        let names: [String]
        let bytes: [[UInt8]]
        init(_ names: [String]) {
            self.names = names
            bytes = names.map { Array($0.utf8) }
        }
    }

    mutating func scanTopLevelObject(keys: Keys) throws -> [TopLevelValue?] {
        try scanTopLevelObject(keys: keys) { Array($0) }
    }

    /// The same, handing the values to `body` in storage on the stack (no array per body).
    mutating func scanTopLevelObject<R>(keys: Keys, _ body: (UnsafeMutableBufferPointer<TopLevelValue?>) throws -> R) throws -> R {
        try withUnsafeTemporaryAllocation(of: TopLevelValue?.self, capacity: keys.bytes.count) { found in
            found.initialize(repeating: nil)
            defer { found.deinitialize() }
            try scanTopLevelObject(keys: keys, into: found)
            return try body(found)
        }
    }

    private mutating func scanTopLevelObject(keys: Keys, into found: UnsafeMutableBufferPointer<TopLevelValue?>) throws {
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF {
            throw Failure("byte order mark before the JSON text")
        }
        let wanted = keys.bytes
        skipWhitespace()
        guard peek() == UInt8(ascii: "{") else { throw Failure("the top level must be a JSON object") }
        i += 1
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            i += 1
        } else {
            while true {
                skipWhitespace()
                let key = try scanStringToken()
                skipWhitespace()
                try expect(UInt8(ascii: ":"))
                skipWhitespace()
                if let k = wanted.firstIndex(where: { matches(key, $0) }) {
                    guard found[k] == nil else { throw Failure("\"\(keys.names[k])\" appears more than once") }
                    if peek() == UInt8(ascii: "\"") {
                        do {
                            found[k] = .string(text(of: try scanStringToken()))
                        } catch let failure as Failure {
                            // Name the attribute: "unpaired surrogate" alone does not say where.
                            throw Failure("\"\(keys.names[k])\": \(failure.message)")
                        }
                    } else {
                        try skipValue(depth: 1)
                        found[k] = .other
                    }
                } else {
                    try skipValue(depth: 1)
                }
                skipWhitespace()
                if peek() == UInt8(ascii: ",") { i += 1; continue }
                try expect(UInt8(ascii: "}"))
                break
            }
        }
        skipWhitespace()
        guard i == bytes.count else { throw Failure("unexpected data after the JSON object") }
    }

    /// A validated string: where its raw bytes lie, and its decoded bytes when it had escapes
    /// (without escapes the raw bytes are the decoded ones, and nothing is allocated).
    struct StringToken {
        var start: Int
        var end: Int
        var decoded: [UInt8]?
    }

    private func matches(_ token: StringToken, _ key: [UInt8]) -> Bool {
        if let decoded = token.decoded { return decoded == key }
        return key.withUnsafeBytes { ByteCompare.equal(UnsafeRawBufferPointer(rebasing: bytes[token.start..<token.end]), $0) }
    }

    private func text(of token: StringToken) -> String {
        if let decoded = token.decoded { return String(decoding: decoded, as: UTF8.self) }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[token.start..<token.end]), as: UTF8.self)
    }

    private func peek() -> UInt8? { i < bytes.count ? bytes[i] : nil }

    @inline(__always)
    private mutating func expect(_ c: UInt8) throws {
        guard i < bytes.count, bytes[i] == c else { throw unexpected() }
        i += 1
    }

    private func unexpected() -> Failure {
        Failure(i < bytes.count ? "unexpected character at byte \(i)" : "unexpected end of JSON")
    }

    @inline(__always)
    private mutating func skipWhitespace() {
        // between tokens there is usually no whitespace at all
        guard i < bytes.count, bytes[i] <= 0x20 else { return }
        while i < bytes.count {
            switch bytes[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            default: return
            }
        }
    }

    /// Skips one value. `depth` counts the containers around it, the top-level object being 1; a
    /// container value may not be the `maximumDepth + 1`-th level.
    private mutating func skipValue(depth: Int) throws {
        guard let c = peek() else { throw Failure("unexpected end of JSON") }
        if c == UInt8(ascii: "{") || c == UInt8(ascii: "["), depth + 1 > CloudEventEnvelope.maximumDepth {
            throw Failure("nested deeper than \(CloudEventEnvelope.maximumDepth) levels")
        }
        switch c {
        case UInt8(ascii: "\""):
            try skipString()
        case UInt8(ascii: "{"):
            i += 1
            skipWhitespace()
            if peek() == UInt8(ascii: "}") { i += 1; return }
            while true {
                skipWhitespace()
                try skipString()
                skipWhitespace()
                try expect(UInt8(ascii: ":"))
                skipWhitespace()
                try skipElement(depth: depth + 1)
                skipWhitespace()
                if peek() == UInt8(ascii: ",") { i += 1; continue }
                try expect(UInt8(ascii: "}"))
                return
            }
        case UInt8(ascii: "["):
            i += 1
            skipWhitespace()
            if peek() == UInt8(ascii: "]") { i += 1; return }
            while true {
                skipWhitespace()
                try skipElement(depth: depth + 1)
                skipWhitespace()
                if peek() == UInt8(ascii: ",") { i += 1; continue }
                try expect(UInt8(ascii: "]"))
                return
            }
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        case UInt8(ascii: "-"), 0x30...0x39: try skipNumber()
        default: throw Failure("unexpected character at byte \(i)")
        }
    }

    /// Skips a value inside a container: strings and numbers, most of a body's values, without
    /// the extra call through `skipValue` (which still takes every container, with its depth check).
    @inline(__always)
    private mutating func skipElement(depth: Int) throws {
        guard i < bytes.count else { throw unexpected() }
        switch bytes[i] {
        case UInt8(ascii: "\""): try skipString()
        case UInt8(ascii: "-"), 0x30...0x39: try skipNumber()
        default: try skipValue(depth: depth)
        }
    }

    private mutating func literal(_ word: StaticString) throws {
        let n = word.utf8CodeUnitCount
        guard i + n <= bytes.count else { throw Failure("unexpected end of JSON") }
        for k in 0..<n where bytes[i + k] != word.utf8Start[k] { throw Failure("invalid literal at byte \(i)") }
        i += n
    }

    private mutating func skipNumber() throws {
        // RFC 8259: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?, read with plain index
        // arithmetic (numbers are most of a payload's tokens after strings).
        let n = bytes.count
        @inline(__always) func isDigit(_ k: Int) -> Bool { k < n && bytes[k] &- 0x30 < 10 }
        var k = i
        if k < n, bytes[k] == UInt8(ascii: "-") { k += 1 }
        guard isDigit(k) else { i = k; throw Failure("invalid number at byte \(k)") }
        if bytes[k] == 0x30 { k += 1 } else { while isDigit(k) { k += 1 } }
        if k < n, bytes[k] == UInt8(ascii: ".") {
            k += 1
            guard isDigit(k) else { i = k; throw Failure("invalid number at byte \(k)") }
            while isDigit(k) { k += 1 }
        }
        if k < n, bytes[k] == UInt8(ascii: "e") || bytes[k] == UInt8(ascii: "E") {
            k += 1
            if k < n, bytes[k] == UInt8(ascii: "+") || bytes[k] == UInt8(ascii: "-") { k += 1 }
            guard isDigit(k) else { i = k; throw Failure("invalid number at byte \(k)") }
            while isDigit(k) { k += 1 }
        }
        i = k
    }

    /// Skips one string. Most strings are plain printable ASCII: those are passed over here;
    /// any other (an escape, a multi-byte sequence, a control character, no closing quote) is
    /// scanned again from its opening quote by `scanStringToken`, which holds every check.
    private mutating func skipString() throws {
        let start = i
        try expect(UInt8(ascii: "\""))
        skipPlainStringBytes()
        if i < bytes.count, bytes[i] == UInt8(ascii: "\"") {
            i += 1
            return
        }
        i = start
        _ = try scanStringToken()
    }

    /// Validates one string (quotes, escapes, UTF-8, no raw control characters).
    private mutating func scanStringToken() throws -> StringToken {
        try expect(UInt8(ascii: "\""))
        let start = i
        var decoded: [UInt8]?
        while true {
            let run = i
            skipPlainStringBytes()
            if i > run, decoded != nil { decoded!.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[run..<i])) }
            guard i < bytes.count else { throw Failure("unterminated string") }
            let c = bytes[i]
            switch c {
            case UInt8(ascii: "\""):
                i += 1
                return StringToken(start: start, end: i - 1, decoded: decoded)
            case UInt8(ascii: "\\"):
                if decoded == nil { decoded = Array(UnsafeRawBufferPointer(rebasing: bytes[start..<i])) }
                i += 1
                guard let e = peek() else { throw Failure("unterminated string") }
                i += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded!.append(e)
                case UInt8(ascii: "b"): decoded!.append(0x08)
                case UInt8(ascii: "f"): decoded!.append(0x0C)
                case UInt8(ascii: "n"): decoded!.append(0x0A)
                case UInt8(ascii: "r"): decoded!.append(0x0D)
                case UInt8(ascii: "t"): decoded!.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if scalar >= 0xD800 && scalar <= 0xDBFF {
                        guard peek() == UInt8(ascii: "\\"), i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "u") else {
                            throw Failure("unpaired surrogate in string")
                        }
                        i += 2
                        let low = try hex4()
                        guard low >= 0xDC00 && low <= 0xDFFF else { throw Failure("unpaired surrogate in string") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                        throw Failure("unpaired surrogate in string")
                    }
                    decoded!.append(contentsOf: String(Character(Unicode.Scalar(scalar)!)).utf8)
                default:
                    throw Failure("invalid escape in string at byte \(i - 1)")
                }
            case 0x00..<0x20:
                throw Failure("control character in string at byte \(i)")
            case 0x20..<0x80:
                decoded?.append(c)
                i += 1
            default:
                let length = try utf8SequenceLength(at: i)
                decoded?.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[i..<(i + length)]))
                i += length
            }
        }
    }

    /// Advances over bytes that need neither decoding nor a UTF-8 check: printable ASCII other
    /// than `"` and `\`. Most of a body is string contents, so these go 8 at a time; the byte that
    /// stops the run (quote, escape, control character, start of a multi-byte sequence, or the
    /// end) is left to `scanStringToken`'s full checks.
    @inline(__always)
    private mutating func skipPlainStringBytes() {
        guard let base = bytes.baseAddress else { return }
        let n = bytes.count
        var k = i
        let ones: UInt64 = 0x0101_0101_0101_0101
        let high: UInt64 = 0x8080_8080_8080_8080
        while n &- k >= 8 {  // k <= n
            let w = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: k, as: UInt64.self))
            // (x - m·0x01…) & ~x & 0x80… is non-zero exactly when some byte of x is below m (m ≤ 0x80):
            // m = 0x20 finds control characters, m = 1 on x = w ^ c·0x01… finds bytes equal to c,
            // and w's own high bits find bytes of multi-byte sequences. Below the first such byte
            // nothing is marked (a borrow only runs upwards from a marked byte), so the lowest mark
            // is exactly the first byte to check.
            let control = (w &- ones &* 0x20) & ~w
            let q = w ^ (ones &* 0x22)
            let quote = (q &- ones) & ~q
            let b = w ^ (ones &* 0x5C)
            let backslash = (b &- ones) & ~b
            let marks = (control | quote | backslash | w) & high
            if marks != 0 {
                i = k &+ (marks.trailingZeroBitCount >> 3)
                return
            }
            k &+= 8  // k + 8 <= n
        }
        while k < n {
            let c = base.load(fromByteOffset: k, as: UInt8.self)
            guard c >= 0x20, c < 0x80, c != 0x22, c != 0x5C else { break }
            k += 1
        }
        i = k
    }

    private mutating func hex4() throws -> UInt32 {
        guard i + 4 <= bytes.count else { throw Failure("unterminated string") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[i]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            default: throw Failure("invalid \\u escape at byte \(i)")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    /// Length of the well-formed UTF-8 sequence starting at `p` (Unicode Table 3-7), or throws.
    private func utf8SequenceLength(at p: Int) throws -> Int {
        let b0 = bytes[p]
        func cont(_ k: Int, _ range: ClosedRange<UInt8> = 0x80...0xBF) throws {
            guard p + k < bytes.count, range.contains(bytes[p + k]) else { throw Failure("invalid UTF-8 at byte \(p)") }
        }
        switch b0 {
        case 0xC2...0xDF: try cont(1); return 2
        case 0xE0: try cont(1, 0xA0...0xBF); try cont(2); return 3
        case 0xE1...0xEC, 0xEE...0xEF: try cont(1); try cont(2); return 3
        case 0xED: try cont(1, 0x80...0x9F); try cont(2); return 3
        case 0xF0: try cont(1, 0x90...0xBF); try cont(2); try cont(3); return 4
        case 0xF1...0xF3: try cont(1); try cont(2); try cont(3); return 4
        case 0xF4: try cont(1, 0x80...0x8F); try cont(2); try cont(3); return 4
        default: throw Failure("invalid UTF-8 at byte \(p)")
        }
    }
}

extension JSONScanner {
    /// Validates the whole text (as `scanTopLevelObject` does) and returns the value `pointer`
    /// names, nil when it names nothing. A key on the path that appears twice in its object is an
    /// error, for the same reason as in the envelope. An array index is decimal without leading zeros.
    mutating func scanValue(at pointer: JSONPointer) throws -> TopLevelValue? {
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF {
            throw Failure("byte order mark before the JSON text")
        }
        skipWhitespace()
        let found = try walk(pointer.tokens[...], depth: 0)
        skipWhitespace()
        guard i == bytes.count else { throw Failure("unexpected data after the JSON value") }
        return found
    }

    private mutating func walk(_ rest: ArraySlice<[UInt8]>, depth: Int) throws -> TopLevelValue? {
        guard let token = rest.first else {
            if peek() == UInt8(ascii: "\"") { return .string(text(of: try scanStringToken())) }
            try skipValue(depth: depth)
            return .other
        }
        guard let c = peek(), c == UInt8(ascii: "{") || c == UInt8(ascii: "[") else {
            try skipValue(depth: depth)
            return nil
        }
        guard depth + 1 <= CloudEventEnvelope.maximumDepth else {
            throw Failure("nested deeper than \(CloudEventEnvelope.maximumDepth) levels")
        }
        i += 1
        skipWhitespace()
        var found: TopLevelValue?
        if c == UInt8(ascii: "{") {
            if peek() == UInt8(ascii: "}") { i += 1; return nil }
            var seen = false
            while true {
                skipWhitespace()
                let key = try scanStringToken()
                skipWhitespace()
                try expect(UInt8(ascii: ":"))
                skipWhitespace()
                if matches(key, token) {
                    guard !seen else { throw Failure("a key on the pointer's path appears more than once") }
                    seen = true
                    found = try walk(rest.dropFirst(), depth: depth + 1)
                } else {
                    try skipValue(depth: depth + 1)
                }
                skipWhitespace()
                if peek() == UInt8(ascii: ",") { i += 1; continue }
                try expect(UInt8(ascii: "}"))
                return found
            }
        }
        let wanted: Int? = token.count <= 9 && !token.isEmpty && (token.count == 1 || token[0] != UInt8(ascii: "0"))
            && token.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 })
            ? token.reduce(0) { $0 * 10 + Int($1 - 0x30) } : nil
        if peek() == UInt8(ascii: "]") { i += 1; return nil }
        var index = 0
        while true {
            skipWhitespace()
            if index == wanted { found = try walk(rest.dropFirst(), depth: depth + 1) } else { try skipValue(depth: depth + 1) }
            index += 1
            skipWhitespace()
            if peek() == UInt8(ascii: ",") { i += 1; continue }
            try expect(UInt8(ascii: "]"))
            return found
        }
    }
}
