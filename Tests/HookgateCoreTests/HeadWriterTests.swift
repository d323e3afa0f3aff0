import Testing
@testable import HookgateCore

@Suite("HTTP head rendering")
struct HTTPHeadTextTests {
    @Test func requestHeadIsExact() {
        var writer = HeadWriter(postTo: "/hook?x=1", authority: "app:5000")
        writer.add(contentsOf: [("X-A", "1"), ("X-B", "two words")])
        let bytes = writer.finish(contentLength: 42)
        #expect(String(decoding: bytes, as: UTF8.self)
            == "POST /hook?x=1 HTTP/1.1\r\nHost: app:5000\r\nX-A: 1\r\nX-B: two words\r\nContent-Length: 42\r\n\r\n")
    }

    @Test func responseHeadIsExact() {
        var writer = HeadWriter(status: 413)
        writer.add("Content-Type", "application/json")
        let bytes = writer.finish(contentLength: 7)
        #expect(String(decoding: bytes, as: UTF8.self)
            == "HTTP/1.1 413 Content Too Large\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n")
    }

    @Test func responseHeadParsesBack() throws {
        var writer = HeadWriter(status: 200)
        writer.add("X-Request-Id", "r-1")
        let bytes = writer.finish(contentLength: 0)
        let head = try bytes.withUnsafeBytes { try HTTPResponseHead.parse($0).get() }
        #expect(head.status == 200)
        #expect(head.framing == .length(0))
        #expect(head.keepAlive)
        #expect(head.headers.pairs.map(\.name) == ["X-Request-Id", "Content-Length"])
    }
}

@Suite("Upstream answer head")
struct HTTPResponseHeadTests {
    struct Case: CustomTestStringConvertible {
        var text: String
        var status: Int?
        var framing: HTTPResponseHead.Framing?
        var keepAlive: Bool?
        var testDescription: String { text.replacingOccurrences(of: "\r\n", with: "⏎") }
    }

    static let cases: [Case] = [
        .init(text: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", status: 200, framing: .length(5), keepAlive: true),
        .init(text: "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", status: 200, framing: .length(0), keepAlive: true),
        .init(text: "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n", status: 201, framing: .chunked, keepAlive: true),
        .init(text: "HTTP/1.1 200 OK\r\n\r\n", status: 200, framing: .untilClose, keepAlive: false),
        .init(text: "HTTP/1.1 204 No Content\r\n\r\n", status: 204, framing: .length(0), keepAlive: true),
        .init(text: "HTTP/1.1 100 Continue\r\n\r\n", status: 100, framing: .length(0), keepAlive: true),
        .init(text: "HTTP/1.1 500 Oops\r\nContent-Length: 2\r\nConnection: close\r\n\r\n", status: 500, framing: .length(2), keepAlive: false),
        .init(text: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n", status: 200, framing: .length(2), keepAlive: false),
        .init(text: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n", status: 200, framing: .length(2), keepAlive: true),
        // refused
        .init(text: "HTTP/2 200 OK\r\n\r\n"),
        .init(text: "HTTP/1.1 20 OK\r\n\r\n"),
        .init(text: "HTTP/1.1 099 Low\r\n\r\n"),
        .init(text: "HTTP/1.1 200OK\r\n\r\n"),
        .init(text: "HTTP/1.1 200 OK\nContent-Length: 1\n\n"),
        .init(text: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"),
        .init(text: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
        .init(text: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
        .init(text: "HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n"),
    ]

    @Test(arguments: cases)
    func parses(_ c: Case) {
        let result = Array(c.text.utf8).withUnsafeBytes { HTTPResponseHead.parse($0) }
        switch result {
        case .success(let head):
            #expect(c.status != nil, "should have been refused")
            #expect(head.status == c.status)
            #expect(head.framing == c.framing)
            #expect(head.keepAlive == c.keepAlive)
        case .failure(let rejection):
            #expect(c.status == nil, "refused: \(rejection.message)")
            #expect(rejection.reason == .upstreamInvalidResponse)
        }
    }
}
