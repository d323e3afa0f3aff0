import Prometheus

/// The ledger store's series (`/metrics`): ids made durable, ids given up, ids waiting for the
/// writer. Made once per process, for the configured store.
final class LedgerMetrics {
    let writes: Counter
    let errors: Counter
    let pending: Gauge

    init(registry: PrometheusCollectorRegistry, store: String) {
        func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "hookgate", subsystem: "ledger_store", metricName: metric, unitName: unit, helpText: help)
        }
        let labels = [("store", store)]
        writes = registry.makeCounter(descriptor: name("writes", "total", "Delivered or renewed ids written to the ledger store."),
                                      labels: labels)
        errors = registry.makeCounter(descriptor: name("errors", "total",
                                                       "Ids the ledger store could not write (they may be forwarded again after a restart)."),
                                      labels: labels)
        pending = registry.makeGauge(descriptor: name("pending", "", "Ids waiting for the ledger store's writer."), labels: labels)
    }
}
