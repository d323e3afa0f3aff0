import Testing
@testable import HookgateCore

@Suite("HTTP head rendering")
struct HTTPHeadTextTests {
    @Test func requestHeadIsExact() {
        let bytes = HTTPHeadText.request(target: "/hook?x=1", authority: "app:5000",
                                         headers: [("X-A", "1"), ("X-B", "two words")], contentLength: 42)
        #expect(String(decoding: bytes, as: UTF8.self)
            == "POST /hook?x=1 HTTP/1.1\r\nHost: app:5000\r\nX-A: 1\r\nX-B: two words\r\nContent-Length: 42\r\n\r\n")
    }

    @Test func responseHeadIsExact() {
        let bytes = HTTPHeadText.response(status: 413, headers: [("Content-Type", "application/json")], contentLength: 7)
        #expect(String(decoding: bytes, as: UTF8.self)
            == "HTTP/1.1 413 Content Too Large\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n")
    }

    @Test func responseHeadParsesBack() throws {
        let bytes = HTTPHeadText.response(status: 200, headers: [("X-Request-Id", "r-1")], contentLength: 0)
        let head = try bytes.withUnsafeBytes { try HTTPResponseHead.parse($0).get() }
        #expect(head.status == 200)
        #expect(head.framing == .length(0))
        #expect(head.keepAlive)
        #expect(head.headers.map(\.name) == ["X-Request-Id", "Content-Length"])
    }
}
