import Foundation
import Prometheus

/// The Redis ledger store's series, registered in the gateway's registry: commands by kind and
/// result, their latency, whether the local fallback is active, and the marks replayed into
/// Redis after an outage (or dropped from a full replay queue).
final class RedisMetrics {
    /// What a command is for.
    enum Command: String, CaseIterable {
        case claim, poll, delivered, renew, release, replay
    }

    /// How a command ended. `skipped`: not sent, the breaker was open.
    enum Result: String, CaseIterable {
        case ok, errorReply = "error_reply", timeout, connection, skipped
    }

    /// What a request got while Redis could not answer.
    enum Fallback: String, CaseIterable {
        /// `on_unavailable: local`: the local ledger alone decided.
        case local
        /// `on_unavailable: reject`: 503 ledger_unavailable.
        case rejected
        /// `reject`, but the sender's last attempt: forwarded.
        case lastAttempt = "last_attempt"
    }

    private let commands: [String: Counter]
    private let latency: [Command: DurationHistogram]
    private let fallbacks: [Fallback: Counter]
    let fallbackActive: Gauge
    let replayed: Counter
    let replayDropped: Counter
    let replayQueued: Gauge

    init(registry: PrometheusCollectorRegistry) {
        var commands: [String: Counter] = [:]
        var latency: [Command: DurationHistogram] = [:]
        for command in Command.allCases {
            for result in Result.allCases {
                commands["\(command.rawValue)|\(result.rawValue)"] = registry.makeCounter(
                    descriptor: Self.name("commands", "total", "Commands to the shared ledger's Redis by kind and result."),
                    labels: [("command", command.rawValue), ("result", result.rawValue)])
            }
            latency[command] = registry.makeDurationHistogram(
                descriptor: Self.name("command_duration", "seconds", "Time from sending a command to its reply (answered commands only)."),
                labels: [("command", command.rawValue)],
                buckets: [.microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
                          .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                          .milliseconds(500), .seconds(1)])
        }
        self.commands = commands
        self.latency = latency
        var fallbacks: [Fallback: Counter] = [:]
        for fallback in Fallback.allCases {
            fallbacks[fallback] = registry.makeCounter(
                descriptor: Self.name("fallbacks", "total", "Events decided without Redis because it could not answer."),
                labels: [("answer", fallback.rawValue)])
        }
        self.fallbacks = fallbacks
        fallbackActive = registry.makeGauge(descriptor: Self.name("fallback", "active", "1 while the circuit breaker in front of Redis is open."))
        replayed = registry.makeCounter(descriptor: Self.name(
            "replayed_marks", "total", "Delivered marks recorded while Redis was unavailable, written to it later."))
        replayDropped = registry.makeCounter(descriptor: Self.name(
            "replay_dropped", "total", "Delivered marks dropped from the full replay queue (may cause a duplicate)."))
        replayQueued = registry.makeGauge(descriptor: Self.name("replay_queue", "marks", "Delivered marks waiting to be written to Redis."))
    }

    /// `hookgate_ledger_redis_<name>_<unit>`.
    private static func name(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "hookgate", subsystem: "ledger_redis", metricName: name, unitName: unit, helpText: help)
    }

    func command(_ command: Command, _ result: Result, microseconds: Int64? = nil) {
        commands["\(command.rawValue)|\(result.rawValue)"]!.increment()
        if let microseconds { latency[command]!.recordNanoseconds(microseconds * 1000) }
    }

    func fellBack(_ fallback: Fallback) { fallbacks[fallback]!.increment() }
}
