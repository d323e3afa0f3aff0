/// Builds an HTTP/1.1 head as bytes: the first line, then fields, then `Content-Length` and the
/// blank line. Fields are appended as they come, from strings or straight from a parsed
/// `HeaderList`'s bytes, so a relayed or forwarded header is copied once and never becomes a
/// `String`.
public struct HeadWriter: ~Copyable {
    private var out: ByteWriter

    /// `POST target HTTP/1.1` and `Host`.
    public init(postTo target: String, authority: String) {
        out = ByteWriter(capacity: 1024)
        out.write("POST " as StaticString)
        out.write(target)
        out.write(" HTTP/1.1\r\nHost: " as StaticString)
        out.write(authority)
    }

    /// `HTTP/1.1 status phrase`.
    public init(status: Int) {
        out = ByteWriter(capacity: 512)
        out.write("HTTP/1.1 " as StaticString)
        out.writeDecimal(status)
        out.write(UInt8(0x20))
        out.write(HTTPStatusPhrase.phrase(status))
    }

    public mutating func add(_ name: String, _ value: String) {
        name.withUTF8Bytes { name in value.withUTF8Bytes { value in out.writeField(name, value) } }
    }

    /// Fields from name/value pairs, in order.
    public mutating func add(contentsOf fields: [(String, String)]) {
        for (name, value) in fields { add(name, value) }
    }

    /// Field `index` of `headers`, byte for byte.
    public mutating func add(field index: Int, of headers: HeaderList) {
        headers.withFieldBytes(index) { name, value in out.writeField(name, value) }
    }

    /// The finished head, with the body's exact `Content-Length`.
    public consuming func finish(contentLength: Int) -> [UInt8] {
        finish(contentLength: contentLength) { [UInt8]($0) }
    }

    /// The same, handed to `body` without making an array (the answer is written straight out).
    public consuming func finish<R>(contentLength: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        out.write("\r\nContent-Length: " as StaticString)
        out.writeDecimal(contentLength)
        out.write("\r\n\r\n" as StaticString)
        return out.withBytes(body)
    }
}

/// The decimal digits of an integer, without making a `String`.
public enum DecimalDigits {
    public static func withDigits<R>(_ value: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        guard value >= 0 else { return String(value).withUTF8Bytes { body(UnsafeRawBufferPointer($0)) } }
        return withDigits(UInt64(value), body)
    }

    public static func withDigits<R>(_ value: UInt64, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of room for up to 20 digits
        var n = value
        var count = 0
        return Swift.withUnsafeMutableBytes(of: &digits) { room in
            repeat {
                room[23 - count] = UInt8(truncatingIfNeeded: n % 10) + 0x30
                n /= 10
                count += 1
            } while n > 0
            return body(UnsafeRawBufferPointer(rebasing: room[(24 - count)...]))
        }
    }

    /// `prefix` followed by `value` in decimal, as one new string (no interpolation machinery).
    public static func string(_ prefix: String, _ value: UInt64) -> String {
        prefix.withUTF8Bytes { head in
            withDigits(value) { digits in
                String(unsafeUninitializedCapacity: head.count + digits.count) { out in
                    _ = out.initialize(from: head)
                    _ = UnsafeMutableBufferPointer(rebasing: out[head.count...]).initialize(from: digits)
                    return head.count + digits.count
                }
            }
        }
    }
}
