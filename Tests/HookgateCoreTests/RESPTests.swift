import Testing
@testable import HookgateCore

/// The RESP2 codec: commands out, replies in, hostile replies refused without buffering more
/// than the limits allow.
@Suite("RESP codec")
struct RESPTests {
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// Reads every whole reply of `text`, then says how it ended.
    static func read(_ input: [UInt8], limits: RESPLimits = RESPLimits()) -> (values: [RESPValue], end: RESPReader.Step) {
        var reader = RESPReader(limits: limits)
        reader.append(input)
        var values: [RESPValue] = []
        while true {
            let step = reader.next()
            guard case .value(let v) = step else { return (values, step) }
            values.append(v)
        }
    }

    @Test func encodesCommandsAsArraysOfBulkStrings() {
        #expect(RESPCommand.encode([Self.bytes("GET"), Self.bytes("k")]) == Self.bytes("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"))
        #expect(RESPCommand.encode([[], [0x0D, 0x0A, 0x00]]) == Self.bytes("*2\r\n$0\r\n\r\n$3\r\n") + [0x0D, 0x0A, 0x00] + Self.bytes("\r\n"))
        #expect(RESPCommand.encode([]) == Self.bytes("*0\r\n"))
    }

    static let valid: [(String, RESPValue)] = [
        ("+OK\r\n", .simple(bytes("OK"))),
        ("+\r\n", .simple([])),
        ("-ERR wrong\r\n", .error(bytes("ERR wrong"))),
        ("-NOSCRIPT No matching script\r\n", .error(bytes("NOSCRIPT No matching script"))),
        (":0\r\n", .integer(0)),
        (":-42\r\n", .integer(-42)),
        (":9223372036854775807\r\n", .integer(Int64.max)),
        ("$5\r\nhello\r\n", .bulk(bytes("hello"))),
        ("$0\r\n\r\n", .bulk([])),
        ("$-1\r\n", .bulk(nil)),
        ("$4\r\na\r\nb\r\n", .bulk(bytes("a\r\nb"))),
        ("*-1\r\n", .array(nil)),
        ("*0\r\n", .array([])),
        ("*3\r\n:1\r\n$-1\r\n+x\r\n", .array([.integer(1), .bulk(nil), .simple(bytes("x"))])),
        ("*2\r\n*1\r\n:1\r\n*0\r\n", .array([.array([.integer(1)]), .array([])])),
    ]

    @Test(arguments: valid)
    func readsEveryReplyType(_ text: String, _ expected: RESPValue) {
        let (values, end) = Self.read(Self.bytes(text))
        #expect(values == [expected])
        #expect(end == .needMore)
    }

    /// Cut anywhere, a valid reply is incomplete, never wrong; fed byte by byte it comes out whole.
    @Test(arguments: valid)
    func truncatedAtEveryByteNeedsMore(_ text: String, _ expected: RESPValue) {
        let input = Self.bytes(text)
        for cut in 0..<input.count {
            let (values, end) = Self.read(Array(input[..<cut]))
            #expect(values.isEmpty && end == .needMore, "cut at \(cut) of \(text.debugDescription)")
        }
        var reader = RESPReader()
        var got: [RESPValue] = []
        for byte in input {
            reader.append([byte])
            if case .value(let v) = reader.next() { got.append(v) }
        }
        #expect(got == [expected])
        #expect(reader.buffered == 0)
    }

    @Test func pipelinedRepliesComeOutInOrder() {
        let (values, end) = Self.read(Self.bytes("+OK\r\n$-1\r\n:7\r\n$9\r\ndelivered\r\n"))
        #expect(values == [.simple(Self.bytes("OK")), .bulk(nil), .integer(7), .bulk(Self.bytes("delivered"))])
        #expect(end == .needMore)
    }

    static let hostile: [String] = [
        "+OK\n",  // bare LF
        "+O\nK\r\n",
        "+O\rK\r\n",  // bare CR
        "$3\r\nabcd\r\n",  // longer than its length
        "$3\r\nab\r\n\r\n",  // shorter: CRLF where a byte was due, then no CRLF
        "$3\r\nabcXY",  // no CRLF after the bulk
        "$-2\r\n",
        "$-0\r\n",
        "$+3\r\nabc\r\n",
        "$ 3\r\nabc\r\n",
        "$\r\n",
        "$3x\r\nabc\r\n",
        "$99999999999\r\n",  // more digits than any length
        "$1048577\r\n",  // over the bulk limit
        "*-2\r\n",
        "*1048577\r\n",
        "*x\r\n",
        ":\r\n",
        ":-\r\n",
        ":12a\r\n",
        ": 1\r\n",
        ":+1\r\n",
        ":9223372036854775808\r\n",  // overflow
        ":99999999999999999999\r\n",
        "_\r\n",  // RESP3 null: not spoken
        "%1\r\n",
        "\r\n",
        "x",
    ]

    @Test(arguments: hostile)
    func hostileRepliesFail(_ text: String) {
        let (values, end) = Self.read(Self.bytes(text))
        #expect(values.isEmpty)
        guard case .failed = end else {
            Issue.record("\(text.debugDescription) was not refused: \(end)")
            return
        }
    }

    @Test func failureIsSticky() {
        var reader = RESPReader()
        reader.append(Self.bytes("?\r\n+OK\r\n"))
        guard case .failed = reader.next() else { Issue.record("not refused"); return }
        guard case .failed = reader.next() else { Issue.record("recovered after a failure"); return }
    }

    @Test func nestingBeyondTheLimitFails() {
        var limits = RESPLimits()
        limits.maximumDepth = 3
        #expect(Self.read(Self.bytes("*1\r\n*1\r\n*1\r\n:1\r\n"), limits: limits).values.count == 1)
        let deep = String(repeating: "*1\r\n", count: 4) + ":1\r\n"
        guard case .failed = Self.read(Self.bytes(deep), limits: limits).end else { Issue.record("depth 4 accepted"); return }
        // A hostile server nesting without end is refused before the whole stream arrives.
        guard case .failed = Self.read(Self.bytes(String(repeating: "*1\r\n", count: 100_000))).end else {
            Issue.record("endless nesting accepted"); return
        }
    }

    @Test func limitsBoundWhatIsBuffered() {
        var limits = RESPLimits()
        limits.maximumBulkBytes = 8
        limits.maximumElements = 2
        limits.maximumLineBytes = 16
        limits.maximumReplyBytes = 48
        #expect(Self.read(Self.bytes("$8\r\n12345678\r\n"), limits: limits).values.count == 1)
        guard case .failed = Self.read(Self.bytes("$9\r\n"), limits: limits).end else { Issue.record("bulk 9"); return }
        guard case .failed = Self.read(Self.bytes("*3\r\n"), limits: limits).end else { Issue.record("3 elements"); return }
        // A status line that never ends.
        guard case .failed = Self.read(Self.bytes("+" + String(repeating: "a", count: 17)), limits: limits).end else {
            Issue.record("endless line"); return
        }
        // Within every per-item limit, but the reply as a whole keeps growing.
        let wide = "*2\r\n*2\r\n$8\r\n12345678\r\n$8\r\n12345678\r\n*2\r\n$8\r\n12345678\r\n$8\r\n1234"
        guard case .failed = Self.read(Self.bytes(wide), limits: limits).end else { Issue.record("reply size"); return }
    }
}

/// The version check at connect: Redis >= 7.0, Valkey >= 7.2.
@Suite("Redis server version")
struct RedisServerVersionTests {
    static let cases: [(String, String?, Bool)] = [
        ("# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:0\r\n", "redis 7.0", true),
        ("redis_version:6.2.14\r\n", "redis 6.2", false),
        ("redis_version:10.1.0\r\n", "redis 10.1", true),
        ("redis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.0.1\r\n", "valkey 8.0", true),
        ("valkey_version:7.1.0\r\nredis_version:7.2.4\r\n", "valkey 7.1", false),
        ("redis_version:7\r\n", nil, false),
        ("redis_version:x.0\r\n", nil, false),
        ("Redis_version:7.0.0\r\n", nil, false),
        ("# Server\r\n", nil, false),
        ("redis_version:\u{FF17}.0\r\n", nil, false),  // a fullwidth seven is not a digit
    ]

    @Test(arguments: cases)
    func readsTheVersion(_ info: String, _ expected: String?, _ supported: Bool) {
        let version = RedisServerVersion(info: Array(info.utf8))
        #expect(version?.description == expected)
        #expect((version?.isSupported ?? false) == supported)
    }
}
