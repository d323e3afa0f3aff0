import Testing
@testable import HookgateCore

/// The access-log line: `level` is `warn` exactly when the upstream could not be used, and then
/// `upstream.error` carries the detail (escaped like every other value).
@Suite("Access log record")
struct AccessLogRecordTests {
    func line(upstreamError: String?, upstreamStatus: Int? = nil) -> String {
        let record = AccessLogRecord(time: "2026-01-01T00:00:00.000Z", route: "vecu", eventID: "evt-1", eventType: "t",
                                     eventSource: "s", outcome: "forwarded", reason: "upstream_unreachable", status: 502,
                                     upstreamStatus: upstreamStatus, durationMicroseconds: 1_500, requestID: "r-1",
                                     client: "127.0.0.1", upstreamError: upstreamError)
        return renderedLine(record)
    }

    @Test func withoutAnUpstreamErrorTheLineIsInfo() {
        let text = line(upstreamError: nil, upstreamStatus: 503)
        #expect(text.hasPrefix(#"{"time":"2026-01-01T00:00:00.000Z","level":"info","msg":"request","#))
        #expect(!text.contains("upstream.error"))
        #expect(text.contains(#","upstream.status":503"#))
        #expect(text.hasSuffix("}\n"))
    }

    @Test(arguments: [
        ("Connection refused", #""Connection refused""#),
        ("TLS: error:0A000086:SSL routines::certificate verify failed", #""TLS: error:0A000086:SSL routines::certificate verify failed""#),
        ("invalid answer: \"quoted\"\n", #""invalid answer: \"quoted\"\n""#),
    ])
    func anUpstreamErrorMakesTheLineWarn(_ detail: String, _ rendered: String) {
        let text = line(upstreamError: detail)
        #expect(text.hasPrefix(#"{"time":"2026-01-01T00:00:00.000Z","level":"warn","msg":"request","#))
        #expect(text.contains(#","upstream.error":"# + rendered + "}\n"))
        #expect(text.filter { $0 == "\n" }.count == 1, "one line")
    }

    @Test func destinationIsLoggedWhenKnown() {
        var record = AccessLogRecord(time: "t", route: "vecu", eventID: nil, eventType: nil, eventSource: nil, outcome: "forwarded",
                                     reason: nil, status: 200, upstreamStatus: 200, durationMicroseconds: 0, requestID: "r",
                                     client: "c")
        #expect(!renderedLine(record).contains("destination"))
        record.destination = "custody-app"
        #expect(renderedLine(record).contains(#""client":"c","destination":"custody-app","duration_ms":"#))
    }
}

private func renderedLine(_ record: AccessLogRecord) -> String {
    var out = ByteWriter(capacity: 64)
    record.writeJSONLine(to: &out)
    return String(decoding: out.finish(), as: UTF8.self)
}
