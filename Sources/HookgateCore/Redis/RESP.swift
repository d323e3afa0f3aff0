/// One RESP2 reply value (https://redis.io/docs/latest/develop/reference/protocol-spec/).
/// Strings stay bytes: Redis values are binary and protocol tokens compare as bytes.
public enum RESPValue: Equatable, Sendable {
    case simple([UInt8])
    case error([UInt8])
    case integer(Int64)
    /// `nil` is the null bulk string (`$-1`).
    case bulk([UInt8]?)
    /// `nil` is the null array (`*-1`).
    case array([RESPValue]?)

    /// `.bulk` or `.simple` content as bytes; `nil` for anything else (including the null bulk).
    public var bytes: [UInt8]? {
        switch self {
        case .simple(let b), .bulk(let b?): b
        default: nil
        }
    }
}

/// How much a reply may claim, so that a hostile or broken server cannot make the client buffer
/// without bound: each bulk string, each array, the nesting, each status line and the whole reply.
public struct RESPLimits: Sendable {
    public var maximumBulkBytes = 64 * 1024
    public var maximumElements = 1024
    public var maximumDepth = 4
    public var maximumLineBytes = 64 * 1024
    public var maximumReplyBytes = 1024 * 1024
    public init() {}
}

/// Why a reply stream cannot be read any further; the connection must be closed.
public struct RESPError: Error, Equatable, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The RESP2 encoder: commands are arrays of bulk strings.
public enum RESPCommand {
    public static func encode(_ arguments: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(16 + arguments.reduce(0) { $0 + $1.count + 16 })
        out.append(UInt8(ascii: "*"))
        out.append(contentsOf: String(arguments.count).utf8)
        out.append(contentsOf: [0x0D, 0x0A])
        for argument in arguments {
            out.append(UInt8(ascii: "$"))
            out.append(contentsOf: String(argument.count).utf8)
            out.append(contentsOf: [0x0D, 0x0A])
            out.append(contentsOf: argument)
            out.append(contentsOf: [0x0D, 0x0A])
        }
        return out
    }
}

/// Incremental RESP2 reply reader: bytes go in as they arrive, whole replies come out in order.
/// An incomplete reply is re-read from its start when more bytes arrive (replies here are small
/// and bounded by `RESPLimits`, so the re-read costs less than keeping a parse stack).
public struct RESPReader: Sendable {
    /// What `next()` found.
    public enum Step: Equatable, Sendable {
        case value(RESPValue)
        case needMore
        case failed(RESPError)
    }

    public let limits: RESPLimits
    private var buffer: [UInt8] = []
    private var start = 0
    private var failure: RESPError?

    public init(limits: RESPLimits = RESPLimits()) { self.limits = limits }

    /// Bytes received and not yet consumed by a whole reply.
    public var buffered: Int { buffer.count - start }

    public mutating func append<S: Sequence>(_ bytes: S) where S.Element == UInt8 {
        if start > 0, start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 4096, start * 2 > buffer.count {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next whole reply, `needMore`, or a failure (sticky: the stream is unusable after it).
    public mutating func next() -> Step {
        if let failure { return .failed(failure) }
        var position = start
        switch parse(&position, depth: 0) {
        case .success(let value?):
            // The same limit as for an incomplete reply, so that how the bytes arrived never matters.
            if position - start > limits.maximumReplyBytes { return fail("reply exceeds \(limits.maximumReplyBytes) bytes") }
            start = position
            return .value(value)
        case .success(nil):
            if buffered > limits.maximumReplyBytes { return fail("reply exceeds \(limits.maximumReplyBytes) bytes") }
            return .needMore
        case .failure(let error):
            failure = error
            return .failed(error)
        }
    }

    private mutating func fail(_ text: String) -> Step {
        let error = RESPError(text)
        failure = error
        return .failed(error)
    }

    /// `.success(nil)`: incomplete. Advances `position` only past what it read.
    private func parse(_ position: inout Int, depth: Int) -> Result<RESPValue?, RESPError> {
        guard position < buffer.count else { return .success(nil) }
        let type = buffer[position]
        guard Self.types.contains(type) else { return .failure(RESPError("unknown reply type byte \(type)")) }
        var cursor = position + 1
        let line: ArraySlice<UInt8>
        switch readLine(&cursor) {
        case .success(let l?): line = l
        case .success(nil): return .success(nil)
        case .failure(let e): return .failure(e)
        }
        switch type {
        case UInt8(ascii: "+"):
            position = cursor
            return .success(.simple(Array(line)))
        case UInt8(ascii: "-"):
            position = cursor
            return .success(.error(Array(line)))
        case UInt8(ascii: ":"):
            guard let n = Self.integer(line) else { return .failure(RESPError("malformed integer")) }
            position = cursor
            return .success(.integer(n))
        case UInt8(ascii: "$"):
            guard let n = Self.length(line) else { return .failure(RESPError("malformed bulk length")) }
            if n < 0 {
                position = cursor
                return .success(.bulk(nil))
            }
            guard n <= limits.maximumBulkBytes else { return .failure(RESPError("bulk string of \(n) bytes exceeds \(limits.maximumBulkBytes)")) }
            let count = Int(n)
            guard buffer.count - cursor >= count + 2 else { return .success(nil) }
            guard buffer[cursor + count] == 0x0D, buffer[cursor + count + 1] == 0x0A else {
                return .failure(RESPError("bulk string not followed by CRLF"))
            }
            position = cursor + count + 2
            return .success(.bulk(Array(buffer[cursor..<(cursor + count)])))
        case UInt8(ascii: "*"):
            guard let n = Self.length(line) else { return .failure(RESPError("malformed array length")) }
            if n < 0 {
                position = cursor
                return .success(.array(nil))
            }
            guard n <= limits.maximumElements else { return .failure(RESPError("array of \(n) elements exceeds \(limits.maximumElements)")) }
            guard depth < limits.maximumDepth else { return .failure(RESPError("arrays nested deeper than \(limits.maximumDepth)")) }
            var elements: [RESPValue] = []
            elements.reserveCapacity(min(Int(n), 64))
            for _ in 0..<n {
                switch parse(&cursor, depth: depth + 1) {
                case .success(let element?): elements.append(element)
                case .success(nil): return .success(nil)
                case .failure(let e): return .failure(e)
                }
            }
            position = cursor
            return .success(.array(elements))
        default:
            return .failure(RESPError("unknown reply type byte \(type)"))
        }
    }

    /// RESP2's five types: `+ - : $ *` (RESP3's are not spoken: HELLO 3 is never sent).
    private static let types: [UInt8] = [0x2B, 0x2D, 0x3A, 0x24, 0x2A]

    /// The line from `cursor` up to CRLF (not included); a bare CR or LF in it is an error.
    private func readLine(_ cursor: inout Int) -> Result<ArraySlice<UInt8>?, RESPError> {
        var i = cursor
        while i < buffer.count {
            let byte = buffer[i]
            if byte == 0x0A { return .failure(RESPError("bare LF in a reply line")) }
            if byte == 0x0D {
                guard i + 1 < buffer.count else { return .success(nil) }
                guard buffer[i + 1] == 0x0A else { return .failure(RESPError("CR not followed by LF")) }
                let line = buffer[cursor..<i]
                cursor = i + 2
                return .success(line)
            }
            if i - cursor >= limits.maximumLineBytes { return .failure(RESPError("reply line longer than \(limits.maximumLineBytes) bytes")) }
            i += 1
        }
        return .success(nil)
    }

    /// `:` payload: an optional `-`, then 1 to 19 ASCII digits, within Int64.
    static func integer(_ line: ArraySlice<UInt8>) -> Int64? {
        var digits = line[...]
        let negative = digits.first == UInt8(ascii: "-")
        if negative { digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.count <= 19 else { return nil }
        var value: Int64 = 0
        for byte in digits {
            guard byte >= 0x30, byte <= 0x39 else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(Int64(byte - 0x30))
            guard !o1, !o2 else { return nil }
            value = s
        }
        return negative ? -value : value
    }

    /// `$`/`*` payload: `-1` (null) or 1 to 10 ASCII digits; any other negative is malformed.
    static func length(_ line: ArraySlice<UInt8>) -> Int64? {
        if line.elementsEqual([UInt8(ascii: "-"), UInt8(ascii: "1")]) { return -1 }
        guard !line.isEmpty, line.count <= 10, line.first != UInt8(ascii: "-") else { return nil }
        return integer(line)
    }
}
