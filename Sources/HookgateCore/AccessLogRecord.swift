/// One access-log line: what happened to one request. Rendered straight to bytes (one JSON
/// object and a newline) without building a dictionary, because it is written for every request.
/// Holds no secret, signature or body by construction: there is no field for them.
public struct AccessLogRecord {
    public var time: String
    public var route: String?
    public var eventID: String?
    public var eventType: String?
    public var eventSource: String?
    public var outcome: String
    public var reason: String?
    public var status: Int
    public var upstreamStatus: Int?
    public var durationMicroseconds: Int64
    public var requestID: String
    public var client: String

    public init(time: String, route: String?, eventID: String?, eventType: String?, eventSource: String?, outcome: String,
                reason: String?, status: Int, upstreamStatus: Int?, durationMicroseconds: Int64, requestID: String, client: String) {
        self.time = time
        self.route = route
        self.eventID = eventID
        self.eventType = eventType
        self.eventSource = eventSource
        self.outcome = outcome
        self.reason = reason
        self.status = status
        self.upstreamStatus = upstreamStatus
        self.durationMicroseconds = durationMicroseconds
        self.requestID = requestID
        self.client = client
    }

    /// `{"time":...,"level":"info","msg":"request",...}\n`; absent values are left out.
    public func jsonLine() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(320)
        out += #"{"time":"#.utf8
        JSONText.appendQuoted(time, to: &out)
        out += #","level":"info","msg":"request","client":"#.utf8
        JSONText.appendQuoted(client, to: &out)
        out += #","duration_ms":"#.utf8
        appendMilliseconds(durationMicroseconds, to: &out)
        if let eventID { out += #","event.id":"#.utf8; JSONText.appendQuoted(eventID, to: &out) }
        if let eventSource { out += #","event.source":"#.utf8; JSONText.appendQuoted(eventSource, to: &out) }
        if let eventType { out += #","event.type":"#.utf8; JSONText.appendQuoted(eventType, to: &out) }
        out += #","outcome":"#.utf8
        JSONText.appendQuoted(outcome, to: &out)
        if let reason { out += #","reason":"#.utf8; JSONText.appendQuoted(reason, to: &out) }
        out += #","request_id":"#.utf8
        JSONText.appendQuoted(requestID, to: &out)
        if let route { out += #","route":"#.utf8; JSONText.appendQuoted(route, to: &out) }
        out += #","status":"#.utf8
        out += String(status).utf8
        if let upstreamStatus { out += #","upstream.status":"#.utf8; out += String(upstreamStatus).utf8 }
        out += "}\n".utf8
        return out
    }

    private func appendMilliseconds(_ microseconds: Int64, to out: inout [UInt8]) {
        let value = max(0, microseconds)
        out += String(value / 1000).utf8
        out.append(UInt8(ascii: "."))
        let fraction = value % 1000
        if fraction < 100 { out.append(UInt8(ascii: "0")) }
        if fraction < 10 { out.append(UInt8(ascii: "0")) }
        out += String(fraction).utf8
    }
}
