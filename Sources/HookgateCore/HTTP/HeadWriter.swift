/// Builds an HTTP/1.1 head as bytes: the first line, then fields, then `Content-Length` and the
/// blank line. Fields are appended as they come, from strings or straight from a parsed
/// `HeaderList`'s bytes, so a relayed or forwarded header is copied once and never becomes a
/// `String`.
public struct HeadWriter {
    private var out: [UInt8]

    /// `POST target HTTP/1.1` and `Host`.
    public init(postTo target: String, authority: String) {
        out = []
        out.reserveCapacity(1024)
        out.appendUTF8("POST ")
        out.appendUTF8(target)
        out.appendUTF8(" HTTP/1.1\r\nHost: ")
        out.appendUTF8(authority)
    }

    /// `HTTP/1.1 status phrase`.
    public init(status: Int) {
        out = []
        out.reserveCapacity(512)
        out.appendUTF8("HTTP/1.1 ")
        out.appendDecimal(status)
        out.append(0x20)
        out.appendUTF8(HTTPStatusPhrase.phrase(status))
    }

    public mutating func add(_ name: String, _ value: String) {
        name.withUTF8Bytes { name in value.withUTF8Bytes { value in addField(name, value) } }
    }

    /// Fields from name/value pairs, in order.
    public mutating func add(contentsOf fields: [(String, String)]) {
        for (name, value) in fields { add(name, value) }
    }

    /// Field `index` of `headers`, byte for byte.
    public mutating func add(field index: Int, of headers: HeaderList) {
        headers.withFieldBytes(index) { name, value in addField(name, value) }
    }

    private mutating func addField(_ name: UnsafeBufferPointer<UInt8>, _ value: UnsafeBufferPointer<UInt8>) {
        out.append(0x0D)
        out.append(0x0A)
        out.append(contentsOf: name)
        out.append(0x3A)
        out.append(0x20)
        out.append(contentsOf: value)
    }

    /// The finished head, with the body's exact `Content-Length`.
    public consuming func finish(contentLength: Int) -> [UInt8] {
        out.appendUTF8("\r\nContent-Length: ")
        out.appendDecimal(contentLength)
        out.appendUTF8("\r\n\r\n")
        return out
    }
}

extension Array where Element == UInt8 {
    /// A non-negative integer in decimal, without making a `String`.
    mutating func appendDecimal(_ value: Int) {
        guard value > 0 else {
            if value == 0 { append(UInt8(ascii: "0")) } else { appendUTF8(String(value)) }
            return
        }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of room for up to 20 digits
        var n = UInt64(value)
        var count = 0
        Swift.withUnsafeMutableBytes(of: &digits) { room in
            while n > 0 {
                room[23 - count] = UInt8(truncatingIfNeeded: n % 10) + 0x30
                n /= 10
                count += 1
            }
            append(contentsOf: room[(24 - count)...])
        }
    }
}
