#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import HookgateCore

/// What is allowed in a configuration but deserves an operator's attention. `check` prints these
/// and `serve` logs them at start-up: one list, so the two never disagree.
public struct ConfigurationWarning: Sendable, Equatable {
    /// The key the warning is about (`routes[0].verify.secrets[1]`).
    public var key: String
    public var message: String

    /// Descriptors kept free for what is not a client connection: the listening sockets, the
    /// admin listener, the signal and wake-up pipes, standard streams, files being read.
    static let reservedDescriptors = 64

    /// Every warning for `configuration`, given the process's open-file hard limit (nil: unlimited).
    public static func all(for configuration: Configuration, openFileLimit: Int? = hardOpenFileLimit()) -> [ConfigurationWarning] {
        var warnings: [ConfigurationWarning] = []
        for (i, route) in configuration.routes.enumerated() {
            for (j, destination) in route.destinations.enumerated() where destination.upstream.tlsInsecureSkipVerify {
                let key = route.isFanOut ? "routes[\(i)].destinations[\(j)].upstream" : "routes[\(i)].upstream"
                warnings.append(.init(key: "\(key).tls_insecure_skip_verify",
                                      message: "upstream certificate verification is off; anyone on the path can read and change events"))
            }
        }
        for (i, route) in configuration.routes.enumerated() {
            for (j, secret) in route.verify.secrets.enumerated() where secret.origin == .literal {
                warnings.append(.init(key: "routes[\(i)].verify.secrets[\(j)]",
                                      message: "secret written in the configuration file; use env or file outside tests"))
            }
        }
        if configuration.spool != nil, !configuration.routes.contains(where: { $0.spool != nil }) {
            warnings.append(.init(key: "spool", message: "no route has spool: set; nothing will be spooled (hookgate spool still reads the file)"))
        }
        for (i, route) in configuration.routes.enumerated() {
            guard let spool = route.spool else { continue }
            if spool.fromRetry > 5 {
                warnings.append(.init(key: "routes[\(i)].spool.from_retry", message:
                    "the platform's last attempt has X-VECU-Retry-Count 5 (6 attempts); \(spool.fromRetry) is never reached, nothing will be spooled"))
            }
            if spool.fromRetry < 5 {
                warnings.append(.init(key: "routes[\(i)].spool.from_retry", message:
                    "failures before the sender's last attempt (retry count 5) are spooled too: the sender stops retrying them and the spool carries normal outages"))
            }
            if route.dedup.ttl < spool.maxAge {
                warnings.append(.init(key: "routes[\(i)].spool.max_age", message:
                    "dedup.ttl (\(route.dedup.ttl)) is shorter than max_age (\(spool.maxAge)): a copy sent after the ttl while the event is still spooled would be forwarded again"))
            }
        }
        for problem in configuration.warnings {
            warnings.append(.init(key: problem.key, message: problem.message))
        }
        if let limit = openFileLimit {
            // Each worker may open up to max_connections upstream connections per destination.
            let workers = configuration.workers.resolved(cores: ProcessInfo.processInfo.activeProcessorCount)
            let upstream = configuration.routes.reduce(0) { sum, route in
                sum + route.destinations.reduce(0) { $0 + $1.upstream.maxConnections }
            } * workers
            let available = limit - upstream - reservedDescriptors
            if configuration.limits.maxConnections > available {
                warnings.append(.init(
                    key: "limits.max_connections",
                    message: "\(configuration.limits.maxConnections) client connections do not fit in the open-file limit "
                        + "(hard limit \(limit), less \(upstream) for upstream connections and \(reservedDescriptors) reserved: "
                        + "\(max(available, 0)) left); raise the limit (ulimit -n, LimitNOFILE) or lower max_connections"))
            }
        }
        return warnings
    }

    /// RLIMIT_NOFILE's hard limit: the soft limit can be raised up to it at start-up.
    public static func hardOpenFileLimit() -> Int? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_max != rlim_t.max else { return nil }
        return Int(clamping: limit.rlim_max)
    }
}
