/// HTTP/1.1 heads as bytes, for requests to the upstream and answers to senders. Rendered once
/// per message straight into a byte array.
public enum HTTPHeadText {
    /// `POST target HTTP/1.1`, `Host`, `headers`, and the body's exact `Content-Length`.
    public static func request(target: String, authority: String, headers: [(name: String, value: String)],
                               contentLength: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256 + headers.count * 48)
        out += "POST ".utf8
        out += target.utf8
        out += " HTTP/1.1\r\nHost: ".utf8
        out += authority.utf8
        append(headers, to: &out)
        finish(contentLength: contentLength, to: &out)
        return out
    }

    /// `HTTP/1.1 status phrase`, `headers`, and the body's exact `Content-Length`.
    public static func response(status: Int, headers: [(String, String)], contentLength: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256 + headers.count * 48)
        out += "HTTP/1.1 ".utf8
        out += String(status).utf8
        out.append(0x20)
        out += HTTPStatusPhrase.phrase(status).utf8
        append(headers, to: &out)
        finish(contentLength: contentLength, to: &out)
        return out
    }

    private static func append(_ headers: [(String, String)], to out: inout [UInt8]) {
        for (name, value) in headers {
            out += "\r\n".utf8
            out += name.utf8
            out += ": ".utf8
            out += value.utf8
        }
    }

    private static func finish(contentLength: Int, to out: inout [UInt8]) {
        out += "\r\nContent-Length: ".utf8
        out += String(contentLength).utf8
        out += "\r\n\r\n".utf8
    }
}
