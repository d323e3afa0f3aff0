import Prometheus

/// One destination's series (`hookgate_destination_events_total{route,destination,result}`):
/// events forwarded and accepted, answered from its dedup ledger, failed (any answer but a 2xx,
/// or none), and filtered out (its filter did not want them). Made once per compiled route; the
/// registry hands back the same counters after a reload.
final class DestinationMetrics {
    /// What became of one event at the destination.
    enum Result: String, CaseIterable {
        case forwarded, duplicate, failed, filtered
        /// Failed on the sender's last attempts and held in the spool (issue 11).
        case spooled
    }

    private let counters: [Counter]
    private static var name: MetricNameDescriptor {
        MetricNameDescriptor(namespace: "hookgate", metricName: "destination_events", unitName: "total",
                             helpText: "Events per destination: forwarded (2xx), duplicate, failed, filtered (not matched), spooled.")
    }

    init(route: String, destination: String, registry: PrometheusCollectorRegistry) {
        counters = Result.allCases.map { result in
            registry.makeCounter(descriptor: Self.name,
                                 labels: [("route", route), ("destination", destination), ("result", result.rawValue)])
        }
    }

    func record(_ result: Result) {
        counters[Result.allCases.firstIndex(of: result)!].increment()
    }
}

extension GatewayMetrics {
    /// Gives every destination of `routes` its series (start-up and reload).
    func attachDestinations(_ routes: [CompiledRoute]) {
        for route in routes {
            for destination in route.destinations {
                destination.metrics = DestinationMetrics(route: route.name, destination: destination.name, registry: registry)
            }
        }
    }
}
