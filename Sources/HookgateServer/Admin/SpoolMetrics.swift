import Prometheus

/// The spool's series (`/metrics`, issue 11): events held by state, the age of the oldest pending
/// one, events spooled and redeliveries by route and result, writes that failed. Its own registry,
/// emitted after the gateway's: nothing here is on the path of a request that is not spooled.
final class SpoolMetrics: @unchecked Sendable {
    let registry = PrometheusCollectorRegistry()
    private let pending: Gauge
    private let dead: Gauge
    private let oldestAge: Gauge
    private let failedFull: Counter
    private let failedError: Counter
    private let spooledName = MetricNameDescriptor(namespace: "hookgate", subsystem: "spool", metricName: "spooled", unitName: "total",
                                                   helpText: "Events written to the spool (answered 202), by route.")
    private let redeliveriesName = MetricNameDescriptor(namespace: "hookgate", subsystem: "spool", metricName: "redeliveries",
                                                        unitName: "total",
                                                        helpText: "Redeliveries from the spool by route and result (delivered, retry, dead).")

    init() {
        let events = MetricNameDescriptor(namespace: "hookgate", subsystem: "spool", metricName: "events", unitName: "",
                                          helpText: "Events held in the spool, by state (pending: to be redelivered; dead: kept for the CLI).")
        pending = registry.makeGauge(descriptor: events, labels: [("state", "pending")])
        dead = registry.makeGauge(descriptor: events, labels: [("state", "dead")])
        oldestAge = registry.makeGauge(descriptor: MetricNameDescriptor(
            namespace: "hookgate", subsystem: "spool", metricName: "oldest_pending_age", unitName: "seconds",
            helpText: "Age of the oldest pending event in the spool (0 when none)."))
        let failures = MetricNameDescriptor(namespace: "hookgate", subsystem: "spool", metricName: "write_failures", unitName: "total",
                                            helpText: "Events that could not be spooled (full: max_events reached; error: the write failed).")
        failedFull = registry.makeCounter(descriptor: failures, labels: [("reason", "full")])
        failedError = registry.makeCounter(descriptor: failures, labels: [("reason", "error")])
    }

    func update(pending: Int, dead: Int, oldestPendingAgeSeconds: Double) {
        self.pending.set(Double(pending))
        self.dead.set(Double(dead))
        oldestAge.set(oldestPendingAgeSeconds)
    }

    func writeFailed(full: Bool) {
        (full ? failedFull : failedError).increment()
    }

    func spooled(route: String) {
        registry.makeCounter(descriptor: spooledName, labels: [("route", route)]).increment()
    }

    func redelivered(route: String, result: String) {
        registry.makeCounter(descriptor: redeliveriesName, labels: [("route", route), ("result", result)]).increment()
    }

    func exposition() -> [UInt8] { registry.emitToBuffer() }
}
