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
    /// Why the upstream could not be used (connection refused, a DNS or TLS failure, an answer
    /// that could not be read): for the operator only, never sent to the sender. A line that has
    /// one is logged at level `warn`.
    public var upstreamError: String?
    /// The one destination the event went to, on a route with `destinations:` (a fan-out to
    /// several logs a line per destination instead).
    public var destination: String?

    public init(time: String, route: String?, eventID: String?, eventType: String?, eventSource: String?, outcome: String,
                reason: String?, status: Int, upstreamStatus: Int?, durationMicroseconds: Int64, requestID: String, client: String,
                upstreamError: String? = nil, destination: String? = nil) {
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
        self.upstreamError = upstreamError
        self.destination = destination
    }

    /// Appends `{"time":...,"level":"info","msg":"request",...}\n` to `out` (`"level":"warn"` when
    /// there is an upstream error); absent values are left out.
    public func appendJSONLine(to out: inout [UInt8]) {
        out.appendUTF8(#"{"time":"#)
        JSONText.appendQuoted(time, to: &out)
        out.appendUTF8(upstreamError == nil ? #","level":"info","msg":"request","client":"# : #","level":"warn","msg":"request","client":"#)
        JSONText.appendQuoted(client, to: &out)
        if let destination { out.appendUTF8(#","destination":"#); JSONText.appendQuoted(destination, to: &out) }
        out.appendUTF8(#","duration_ms":"#)
        appendMilliseconds(durationMicroseconds, to: &out)
        if let eventID { out.appendUTF8(#","event.id":"#); JSONText.appendQuoted(eventID, to: &out) }
        if let eventSource { out.appendUTF8(#","event.source":"#); JSONText.appendQuoted(eventSource, to: &out) }
        if let eventType { out.appendUTF8(#","event.type":"#); JSONText.appendQuoted(eventType, to: &out) }
        out.appendUTF8(#","outcome":"#)
        JSONText.appendQuoted(outcome, to: &out)
        if let reason { out.appendUTF8(#","reason":"#); JSONText.appendQuoted(reason, to: &out) }
        out.appendUTF8(#","request_id":"#)
        JSONText.appendQuoted(requestID, to: &out)
        if let route { out.appendUTF8(#","route":"#); JSONText.appendQuoted(route, to: &out) }
        out.appendUTF8(#","status":"#)
        out.appendDecimal(status)
        if let upstreamError { out.appendUTF8(#","upstream.error":"#); JSONText.appendQuoted(upstreamError, to: &out) }
        if let upstreamStatus { out.appendUTF8(#","upstream.status":"#); out.appendDecimal(upstreamStatus) }
        out.appendUTF8("}\n")
    }

    private func appendMilliseconds(_ microseconds: Int64, to out: inout [UInt8]) {
        let value = max(0, microseconds)
        out.appendDecimal(Int(value / 1000))
        out.append(UInt8(ascii: "."))
        let fraction = value % 1000
        if fraction < 100 { out.append(UInt8(ascii: "0")) }
        if fraction < 10 { out.append(UInt8(ascii: "0")) }
        out.appendDecimal(Int(fraction))
    }
}
