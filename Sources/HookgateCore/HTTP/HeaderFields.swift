/// How many times a header occurs, and its value when it occurs once.
public enum HeaderValue: Equatable, Sendable {
    case missing
    case one(String)
    case repeated
}

/// Read access to a request's headers, implemented over libevent's header list by the server
/// and over an array in tests. Names compare case-insensitively.
public protocol HeaderFields {
    func value(named name: String) -> HeaderValue
    /// `value(named:)` as bytes, without making a `String`; the bytes are valid only in `body`.
    func withValue<R>(named name: String, _ body: (HeaderValueBytes) -> R) -> R
}

/// How many times a header occurs, and its value's bytes when it occurs once.
public enum HeaderValueBytes {
    case missing
    case one(UnsafeBufferPointer<UInt8>)
    case repeated
}

extension HeaderFields {
    public func withValue<R>(named name: String, _ body: (HeaderValueBytes) -> R) -> R {
        switch value(named: name) {
        case .missing: return body(.missing)
        case .repeated: return body(.repeated)
        case .one(var text): return text.withUTF8 { body(.one($0)) }
        }
    }
}

/// A header section kept as bytes: one copy of the fields' text and the offsets of each name and
/// value. Names compare case-insensitively on the bytes; a `String` is made only for a value that
/// is asked for. The head parsers build it with two allocations whatever the number of fields;
/// tests and the demo build it from pairs.
public struct HeaderList: HeaderFields, Sendable {
    struct Field: Sendable {
        var nameStart: Int32
        var nameEnd: Int32
        var valueStart: Int32
        var valueEnd: Int32
    }

    let bytes: [UInt8]
    let fields: [Field]

    init(bytes: [UInt8], fields: [Field]) {
        self.bytes = bytes
        self.fields = fields
    }

    /// Headers from name/value pairs, in order.
    public init(_ pairs: [(String, String)]) {
        var bytes: [UInt8] = []
        var fields: [Field] = []
        fields.reserveCapacity(pairs.count)
        for (name, value) in pairs {
            let nameStart = Int32(bytes.count)
            bytes.appendUTF8(name)
            let nameEnd = Int32(bytes.count)
            bytes.appendUTF8(value)
            fields.append(Field(nameStart: nameStart, nameEnd: nameEnd, valueStart: nameEnd, valueEnd: Int32(bytes.count)))
        }
        self.init(bytes: bytes, fields: fields)
    }

    /// No fields (without allocating).
    public static var empty: HeaderList { HeaderList(bytes: [], fields: []) }

    public var count: Int { fields.count }

    public func name(at index: Int) -> String {
        String(decoding: bytes[Int(fields[index].nameStart)..<Int(fields[index].nameEnd)], as: UTF8.self)
    }

    public func value(at index: Int) -> String {
        String(decoding: bytes[Int(fields[index].valueStart)..<Int(fields[index].valueEnd)], as: UTF8.self)
    }

    /// Every field as strings, in order (tests, diagnostics).
    public var pairs: [(name: String, value: String)] { (0..<count).map { (name(at: $0), value(at: $0)) } }

    /// Calls `body` with the name's and the value's bytes of field `index`.
    public func withFieldBytes<R>(_ index: Int, _ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) -> R) -> R {
        let f = fields[index]
        return bytes.withUnsafeBufferPointer { all in
            body(UnsafeBufferPointer(rebasing: all[Int(f.nameStart)..<Int(f.nameEnd)]),
                 UnsafeBufferPointer(rebasing: all[Int(f.valueStart)..<Int(f.valueEnd)]))
        }
    }

    /// Whether field `index` is called `name` (ASCII case-insensitive).
    public func nameIs(_ index: Int, _ name: StaticString) -> Bool {
        withFieldBytes(index) { fieldName, _ in ASCIICase.equal(fieldName, name) }
    }

    public func value(named name: String) -> HeaderValue {
        switch field(named: name) {
        case .none: return .missing
        case .some(nil): return .repeated
        case .some(let index?): return .one(value(at: index))
        }
    }

    public func withValue<R>(named name: String, _ body: (HeaderValueBytes) -> R) -> R {
        switch field(named: name) {
        case .none: return body(.missing)
        case .some(nil): return body(.repeated)
        case .some(let index?): return withFieldBytes(index) { _, value in body(.one(value)) }
        }
    }

    /// Calls `body` with each field's index, name and value bytes, in order, with one access to
    /// the bytes for all of them.
    public func forEachField(_ body: (Int, UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) -> Void) {
        bytes.withUnsafeBufferPointer { all in
            fields.withUnsafeBufferPointer { list in
                for i in 0..<list.count {
                    let f = list[i]
                    body(i, UnsafeBufferPointer(rebasing: all[Int(f.nameStart)..<Int(f.nameEnd)]),
                         UnsafeBufferPointer(rebasing: all[Int(f.valueStart)..<Int(f.valueEnd)]))
                }
            }
        }
    }

    /// The index of the one field called `name`: nil if there is none, `.some(nil)` if several.
    /// One pass over the offsets, comparing bytes only for names of the same length.
    private func field(named name: String) -> Int?? {
        name.withUTF8Bytes { wanted in
            bytes.withUnsafeBufferPointer { all in
                fields.withUnsafeBufferPointer { list in
                    var found: Int?
                    for i in 0..<list.count {
                        let f = list[i]
                        guard Int(f.nameEnd - f.nameStart) == wanted.count,
                              ASCIICase.equal(UnsafeBufferPointer(rebasing: all[Int(f.nameStart)..<Int(f.nameEnd)]), wanted) else { continue }
                        if found != nil { return .some(nil) }
                        found = i
                    }
                    return found.map { .some($0) } ?? nil
                }
            }
        }
    }

    /// ASCII case-insensitive comparison of two names, without allocating.
    public static func sameName(_ a: String, _ b: String) -> Bool {
        a.withUTF8Bytes { x in b.withUTF8Bytes { y in ASCIICase.equal(x, y) } }
    }
}

/// Byte comparisons that ignore ASCII case, for header names.
public enum ASCIICase {
    @inlinable
    public static func lower(_ c: UInt8) -> UInt8 { c >= 0x41 && c <= 0x5A ? c | 0x20 : c }

    public static func equal(_ x: UnsafeBufferPointer<UInt8>, _ y: UnsafeBufferPointer<UInt8>) -> Bool {
        guard x.count == y.count else { return false }
        let n = x.count
        var i = 0
        // Names are usually sent in the case they are looked up in: words that are equal as they
        // are are passed over; from the first that differs, byte by byte.
        if let xBase = x.baseAddress, let yBase = y.baseAddress {
            while i + 8 <= n,
                  UnsafeRawPointer(xBase + i).loadUnaligned(as: UInt64.self) == UnsafeRawPointer(yBase + i).loadUnaligned(as: UInt64.self) {
                i += 8
            }
        }
        while i < n {
            if x[i] != y[i] && lower(x[i]) != lower(y[i]) { return false }
            i += 1
        }
        return true
    }

    public static func equal(_ x: UnsafeBufferPointer<UInt8>, _ name: StaticString) -> Bool {
        name.withUTF8Buffer { equal(x, $0) }
    }

    /// `bytes` with A-Z mapped to a-z and every other byte unchanged.
    public static func lowercased(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        String(unsafeUninitializedCapacity: bytes.count) { out in
            for i in 0..<bytes.count { out[i] = lower(bytes[i]) }
            return bytes.count
        }
    }

    /// `bytes` starts with `prefix`, which is lower-case ASCII, ignoring the case of `bytes`.
    public static func hasLowercasePrefix(_ bytes: UnsafeBufferPointer<UInt8>, _ prefix: UnsafeBufferPointer<UInt8>) -> Bool {
        guard bytes.count >= prefix.count else { return false }
        for i in 0..<prefix.count where lower(bytes[i]) != prefix[i] { return false }
        return true
    }
}

/// Reason phrases for the statuses hookgate sends itself (relayed statuses use the same table;
/// the phrase carries no meaning in HTTP/1.1).
public enum HTTPStatusPhrase {
    public static func phrase(_ status: Int) -> String {
        switch status {
        case 100: return "Continue"
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 204: return "No Content"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 413: return "Content Too Large"
        case 417: return "Expectation Failed"
        case 422: return "Unprocessable Content"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 505: return "HTTP Version Not Supported"
        default: return "Status"
        }
    }
}
