import Yams

extension ConfigurationLoader {
    /// The shortest `backoff.initial`: shorter would make a down upstream a busy loop.
    public static let minimumSpoolBackoff = ConfigDuration(milliseconds: 100)

    static func loadSpool(_ node: Node, reader: inout NodeReader, environment: SecretEnvironment) -> SpoolConfiguration? {
        guard let map = reader.mapping(node, at: "spool") else { return nil }
        let f = reader.fields(map, at: "spool", allowed: ["path", "max_events", "max_connections"])
        var spool = loadFilePath(f, at: "spool", reader: &reader, environment: environment).map(SpoolConfiguration.init(path:))
        if let n = f["max_events"], let v = reader.integer(n, at: "spool.max_events", in: 1...10_000_000) { spool?.maxEvents = v }
        if let n = f["max_connections"], let v = reader.integer(n, at: "spool.max_connections", in: 1...64) { spool?.maxConnections = v }
        return spool
    }

    static func loadRouteSpool(_ node: Node, at key: String, reader: inout NodeReader) -> RouteSpool? {
        var spool = RouteSpool()
        // `spool: {}` takes every default.
        guard let map = reader.mapping(node, at: key) else { return nil }
        let f = reader.fields(map, at: key, allowed: ["from_retry", "max_age", "backoff"])
        if let n = f["from_retry"], let v = reader.integer(n, at: "\(key).from_retry", in: 0...100) { spool.fromRetry = v }
        if let n = f["max_age"], let d = reader.duration(n, at: "\(key).max_age", minimum: .seconds(1)) { spool.maxAge = d }
        if let n = f["backoff"], let m = reader.mapping(n, at: "\(key).backoff") {
            let b = reader.fields(m, at: "\(key).backoff", allowed: ["initial", "max"])
            if let n = b["initial"], let d = reader.duration(n, at: "\(key).backoff.initial", minimum: minimumSpoolBackoff) {
                spool.initialBackoff = d
            }
            if let n = b["max"], let d = reader.duration(n, at: "\(key).backoff.max", minimum: minimumSpoolBackoff) {
                spool.maximumBackoff = d
            }
            if spool.maximumBackoff < spool.initialBackoff {
                reader.problem("\(key).backoff.max", "must be at least backoff.initial (\(spool.initialBackoff)), got \(spool.maximumBackoff)")
            }
        }
        return spool
    }
}
