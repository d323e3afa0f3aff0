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

    /// Writes `{"time":...,"level":"info","msg":"request",...}\n` to `out` (`"level":"warn"` when
    /// there is an upstream error); absent values are left out.
    public func writeJSONLine(to out: inout ByteWriter) {
        out.write(#"{"time":"# as StaticString)
        JSONText.writeQuoted(time, to: &out)
        out.write(upstreamError == nil ? #","level":"info","msg":"request","client":"# as StaticString
                                       : #","level":"warn","msg":"request","client":"# as StaticString)
        JSONText.writeQuoted(client, to: &out)
        if let destination { out.write(#","destination":"# as StaticString); JSONText.writeQuoted(destination, to: &out) }
        out.write(#","duration_ms":"# as StaticString)
        writeMilliseconds(durationMicroseconds, to: &out)
        if let eventID { out.write(#","event.id":"# as StaticString); JSONText.writeQuoted(eventID, to: &out) }
        if let eventSource { out.write(#","event.source":"# as StaticString); JSONText.writeQuoted(eventSource, to: &out) }
        if let eventType { out.write(#","event.type":"# as StaticString); JSONText.writeQuoted(eventType, to: &out) }
        out.write(#","outcome":"# as StaticString)
        JSONText.writeQuoted(outcome, to: &out)
        if let reason { out.write(#","reason":"# as StaticString); JSONText.writeQuoted(reason, to: &out) }
        out.write(#","request_id":"# as StaticString)
        JSONText.writeQuoted(requestID, to: &out)
        if let route { out.write(#","route":"# as StaticString); JSONText.writeQuoted(route, to: &out) }
        out.write(#","status":"# as StaticString)
        out.writeDecimal(status)
        if let upstreamError { out.write(#","upstream.error":"# as StaticString); JSONText.writeQuoted(upstreamError, to: &out) }
        if let upstreamStatus { out.write(#","upstream.status":"# as StaticString); out.writeDecimal(upstreamStatus) }
        out.write("}\n" as StaticString)
    }

    private func writeMilliseconds(_ microseconds: Int64, to out: inout ByteWriter) {
        let value = max(0, microseconds)
        out.writeDecimal(Int(value / 1000))
        out.write(UInt8(ascii: "."))
        let fraction = value % 1000
        if fraction < 100 { out.write(UInt8(ascii: "0")) }
        if fraction < 10 { out.write(UInt8(ascii: "0")) }
        out.writeDecimal(Int(fraction))
    }
}
