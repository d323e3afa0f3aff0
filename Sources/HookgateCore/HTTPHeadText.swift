/// HTTP/1.1 heads as bytes, for requests to the upstream and answers to senders. Rendered once
/// per message straight into a byte array.
public enum HTTPHeadText {
    /// `POST target HTTP/1.1`, `Host`, `headers`, and the body's exact `Content-Length`.
    public static func request(target: String, authority: String, headers: [(name: String, value: String)],
                               contentLength: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256 + headers.count * 48)
        out.appendUTF8("POST ")
        out.appendUTF8(target)
        out.appendUTF8(" HTTP/1.1\r\nHost: ")
        out.appendUTF8(authority)
        append(headers, to: &out)
        finish(contentLength: contentLength, to: &out)
        return out
    }

    /// `HTTP/1.1 status phrase`, `headers`, and the body's exact `Content-Length`.
    public static func response(status: Int, headers: [(String, String)], contentLength: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256 + headers.count * 48)
        out.appendUTF8("HTTP/1.1 ")
        out.appendUTF8(String(status))
        out.append(0x20)
        out.appendUTF8(HTTPStatusPhrase.phrase(status))
        append(headers, to: &out)
        finish(contentLength: contentLength, to: &out)
        return out
    }

    private static func append(_ headers: [(String, String)], to out: inout [UInt8]) {
        for (name, value) in headers {
            out.appendUTF8("\r\n")
            out.appendUTF8(name)
            out.appendUTF8(": ")
            out.appendUTF8(value)
        }
    }

    private static func finish(contentLength: Int, to out: inout [UInt8]) {
        out.appendUTF8("\r\nContent-Length: ")
        out.appendUTF8(String(contentLength))
        out.appendUTF8("\r\n\r\n")
    }
}
