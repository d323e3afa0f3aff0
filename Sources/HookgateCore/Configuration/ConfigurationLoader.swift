import Yams

/// One thing wrong with a configuration file, naming the key it is about
/// (`routes[0].verify.secrets[0]`) so an operator can find it.
public struct ConfigurationProblem: Error, Sendable, Equatable, CustomStringConvertible {
    public var key: String
    public var message: String
    public init(key: String, message: String) {
        self.key = key
        self.message = message
    }
    public var description: String { key.isEmpty ? message : "\(key): \(message)" }
}

/// Everything wrong with a configuration file, in file order.
public struct ConfigurationProblems: Error, Sendable, CustomStringConvertible {
    public var problems: [ConfigurationProblem]
    public init(problems: [ConfigurationProblem]) { self.problems = problems }
    public var description: String { problems.map(\.description).joined(separator: "\n") }
}

/// What the loader may read besides the file itself: injected so that loading is pure and testable.
public struct SecretEnvironment: Sendable {
    public var variables: [String: String]
    public var readFile: @Sendable (String) throws -> [UInt8]
    /// Whether a folder exists and this process may create files in it (`ledger.sqlite.path`).
    public var isWritableDirectory: @Sendable (String) -> Bool

    public init(variables: [String: String], readFile: @escaping @Sendable (String) throws -> [UInt8],
                isWritableDirectory: @escaping @Sendable (String) -> Bool = { _ in true }) {
        self.variables = variables
        self.readFile = readFile
        self.isWritableDirectory = isWritableDirectory
    }
}

/// Turns YAML text into a validated `Configuration`, collecting every problem rather than
/// stopping at the first. Unknown keys are errors, not ignored.
public enum ConfigurationLoader {
    /// Secrets shorter than this are rejected (the platform issues 32+ character secrets).
    public static let minimumSecretBytes = 32
    /// The sender gives up after 30 s; the upstream timeout must leave room to answer.
    public static let senderDeadline = ConfigDuration.seconds(30)
    /// Load balancers deregister within seconds; a longer delay only slows every rollout.
    public static let maximumShutdownDelay = ConfigDuration.seconds(60)

    /// The file's bytes: UTF-8 is checked here so that a binary or mis-encoded file is reported
    /// by position, like every other problem.
    public static func load(bytes: [UInt8], environment: SecretEnvironment) -> Result<Configuration, ConfigurationProblems> {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            let (line, column) = YAMLErrorText.firstInvalidUTF8(bytes)
            return .failure(ConfigurationProblems(problems: [.init(key: "", message: "not UTF-8 at \(line):\(column)")]))
        }
        return load(yaml: text, environment: environment)
    }

    public static func load(yaml: String, environment: SecretEnvironment) -> Result<Configuration, ConfigurationProblems> {
        var reader = NodeReader()
        let root: Node?
        do {
            // Scalars are read as text and interpreted here, so no tag resolution: the default
            // resolver runs NSRegularExpression (ICU) on every scalar and maps ICU into memory.
            root = try Yams.compose(yaml: yaml, .basic)
        } catch {
            return .failure(ConfigurationProblems(problems: [YAMLErrorText.problem(for: error, in: yaml)]))
        }
        guard let root, case .mapping(let top) = root else {
            return .failure(ConfigurationProblems(problems: [.init(key: "", message: "the file must be a YAML mapping")]))
        }
        var config = Configuration()
        let fields = reader.fields(top, at: "", allowed: [
            "listen",
            "workers",
            "limits",
            "shutdown_grace",
            "routes",
            "admin",
            "ledger",
            "trusted_proxies",
            "shutdown_delay",
            "log_level",
            "product_groups",
            "spool",
        ])
        if let node = fields["product_groups"] {
            config.productGroups = loadProductGroups(node, reader: &reader)
        }

        if let node = fields["listen"] {
            var addressNode: Node? = node
            if case .mapping(let map) = node {
                let f = reader.fields(map, at: "listen", allowed: ["address", "tls", "proxy_protocol"])
                addressNode = reader.required(f, "address", at: "listen")
                if let n = f["proxy_protocol"], let on = reader.boolean(n, at: "listen.proxy_protocol") { config.proxyProtocol = on }
                if let tlsNode = f["tls"], let tlsMap = reader.mapping(tlsNode, at: "listen.tls") {
                    let t = reader.fields(tlsMap, at: "listen.tls", allowed: ["cert", "key"])
                    let cert = reader.required(t, "cert", at: "listen.tls").flatMap { reader.string($0, at: "listen.tls.cert") }
                    let key = reader.required(t, "key", at: "listen.tls").flatMap { reader.string($0, at: "listen.tls.key") }
                    for (k, path) in [("listen.tls.cert", cert), ("listen.tls.key", key)] {
                        guard let path else { continue }
                        do { _ = try environment.readFile(path) } catch { reader.problem(k, "cannot read \(path): \(error)") }
                    }
                    if let cert, let key { config.tls = TLSFiles(certificate: cert, key: key) }
                }
            }
            let key: String = if case .mapping = node { "listen.address" } else { "listen" }
            if let addressNode, let text = reader.string(addressNode, at: key) {
                if let address = ListenAddress(parsing: text) { config.listen = address }
                else { reader.problem(key, "expected host:port (e.g. 127.0.0.1:8080 or [::1]:8080), got \"\(text)\"") }
            }
        }
        if let node = fields["workers"] {
            if let text = reader.string(node, at: "workers") {
                if text == "auto" { config.workers = .auto }
                else if let n = Int(text), n >= 1, n <= 1024 { config.workers = .fixed(n) }
                else { reader.problem("workers", "expected a number from 1 to 1024 or \"auto\", got \"\(text)\"") }
            }
        }
        if let node = fields["limits"], let map = reader.mapping(node, at: "limits") {
            let f = reader.fields(map, at: "limits", allowed: ["max_body_bytes", "max_header_bytes", "client_timeout", "max_connections"])
            if let n = f["max_body_bytes"], let v = reader.integer(n, at: "limits.max_body_bytes", in: 1...(1 << 30)) {
                config.limits.maxBodyBytes = v
            }
            if let n = f["max_header_bytes"], let v = reader.integer(n, at: "limits.max_header_bytes", in: 1024...(1 << 20)) {
                config.limits.maxHeaderBytes = v
            }
            if let n = f["max_connections"], let v = reader.integer(n, at: "limits.max_connections", in: 1...1_000_000) {
                config.limits.maxConnections = v
            }
            if let n = f["client_timeout"], let d = reader.duration(n, at: "limits.client_timeout", minimum: .init(milliseconds: 100)) {
                config.limits.clientTimeout = d
            }
        }
        if let node = fields["admin"], let map = reader.mapping(node, at: "admin") {
            let f = reader.fields(map, at: "admin", allowed: ["listen"])
            if let n = reader.required(f, "listen", at: "admin"), let text = reader.string(n, at: "admin.listen") {
                if let address = ListenAddress(parsing: text) { config.adminListen = address }
                else { reader.problem("admin.listen", "expected host:port, got \"\(text)\"") }
            }
        }
        if let node = fields["log_level"], let text = reader.string(node, at: "log_level") {
            if let level = LogLevel(rawValue: text) { config.logLevel = level }
            else { reader.problem("log_level", "expected one of \(LogLevel.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(text)\"") }
        }
        if let node = fields["shutdown_grace"], let d = reader.duration(node, at: "shutdown_grace", minimum: .init(milliseconds: 0)) {
            config.shutdownGrace = d
        }
        if let node = fields["shutdown_delay"], let d = reader.duration(node, at: "shutdown_delay", minimum: .init(milliseconds: 0)) {
            if d > maximumShutdownDelay { reader.problem("shutdown_delay", "must be at most \(maximumShutdownDelay), got \(d)") }
            config.shutdownDelay = d
        }

        if let node = fields["routes"], let list = reader.sequence(node, at: "routes") {
            if list.isEmpty { reader.problem("routes", "at least one route is required") }
            var seenPaths: [String: Int] = [:]
            var seenNames: [String: Int] = [:]
            for (i, item) in list.enumerated() {
                let key = "routes[\(i)]"
                guard let route = loadRoute(item, at: key, productGroups: config.productGroups, reader: &reader,
                                            environment: environment) else { continue }
                if let first = seenPaths[route.path] {
                    reader.problem("\(key).path", "duplicate path \"\(route.path)\" (also routes[\(first)].path)")
                } else {
                    seenPaths[route.path] = i
                }
                if let first = seenNames[route.name] {
                    reader.problem("\(key).name", "duplicate name \"\(route.name)\" (also routes[\(first)].name)")
                } else {
                    seenNames[route.name] = i
                }
                config.routes.append(route)
            }
        } else if fields["routes"] == nil {
            reader.problem("routes", "is required")
        }

        if let node = fields["ledger"] {
            config.ledger = loadLedger(node, routes: config.routes, reader: &reader, environment: environment)
        }
        if let node = fields["spool"] {
            config.spool = loadSpool(node, reader: &reader, environment: environment)
        }
        for (i, route) in config.routes.enumerated() where route.spool != nil && fields["spool"] == nil {
            reader.problem("routes[\(i)].spool", "needs the top-level spool (its path) to be configured")
        }
        if let node = fields["trusted_proxies"], let list = reader.sequence(node, at: "trusted_proxies") {
            for (i, item) in list.enumerated() {
                guard let text = reader.string(item, at: "trusted_proxies[\(i)]") else { continue }
                if let network = IPNetwork(parsing: text) { config.trustedProxies.append(network) }
                else { reader.problem("trusted_proxies[\(i)]", "expected an IPv4 or IPv6 address or CIDR (e.g. 10.0.0.0/8, fd00::/8), got \"\(text)\"") }
            }
        }

        if let admin = config.adminListen, admin == config.listen, admin.port != 0 {
            reader.problem("admin.listen", "must differ from listen: admin paths are never served on the webhook port")
        }
        return reader.problems.isEmpty ? .success(config) : .failure(ConfigurationProblems(problems: reader.problems))
    }

    /// Route and destination names: letters, digits, `-`, `_`, `.` (never `/`, which joins the
    /// two in a destination's ledger name).
    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) })
    }

    private static func loadRoute(_ node: Node, at key: String, productGroups: [String: [String]], reader: inout NodeReader,
                                  environment: SecretEnvironment) -> Configuration.Route? {
        guard let map = reader.mapping(node, at: key) else { return nil }
        let f = reader.fields(map, at: key, allowed: ["name", "path", "verify", "dedup", "upstream", "destinations", "spool"])
        let name = reader.required(f, "name", at: key).flatMap { reader.string($0, at: "\(key).name") }
        if let name, !isValidName(name) {
            reader.problem("\(key).name", "expected letters, digits, '-', '_' or '.', got \"\(name)\"")
        }
        let path = reader.required(f, "path", at: key).flatMap { reader.string($0, at: "\(key).path") }
        if let path, !path.hasPrefix("/") || path.contains("?") || path.contains(where: { $0 == " " || $0.isNewline }) {
            reader.problem("\(key).path", "expected an absolute path without query, got \"\(path)\"")
        }
        let verify = reader.required(f, "verify", at: key).flatMap { loadVerify($0, at: "\(key).verify", reader: &reader, environment: environment) }
        var dedup = Configuration.Dedup()
        if let node = f["dedup"], let m = reader.mapping(node, at: "\(key).dedup") {
            let d = reader.fields(m, at: "\(key).dedup", allowed: ["capacity", "ttl", "id"])
            if let n = d["capacity"], let v = reader.integer(n, at: "\(key).dedup.capacity", in: 1...50_000_000) { dedup.capacity = v }
            if let n = d["ttl"], let v = reader.duration(n, at: "\(key).dedup.ttl", minimum: .seconds(1)) { dedup.ttl = v }
            if let n = d["id"], let text = reader.string(n, at: "\(key).dedup.id") {
                if verify?.scheme == .vecu { reader.problem("\(key).dedup.id", "vecu takes the event id from the CloudEvents envelope") }
                else if let id = EventIDSource(parsing: text) { dedup.id = id }
                else { reader.problem("\(key).dedup.id", "expected header:NAME or body:/json/pointer, got \"\(text)\"") }
            }
        }
        var spool: RouteSpool?
        if let node = f["spool"] {
            spool = loadRouteSpool(node, at: "\(key).spool", reader: &reader)
            if let verify, verify.scheme != .vecu {
                reader.problem("\(key).spool", "redeliveries are signed afresh as vecu events; only vecu routes can spool (this one is \(verify.scheme.rawValue))")
            }
        }
        var route = loadRouteDestinations(f, at: key, name: name, path: path, verify: verify, dedup: dedup,
                                          productGroups: productGroups, reader: &reader, environment: environment)
        route?.spool = spool
        return route
    }

    private static func loadRouteDestinations(_ f: [String: Node], at key: String, name: String?, path: String?,
                                              verify: Configuration.Verify?, dedup: Configuration.Dedup,
                                              productGroups: [String: [String]], reader: inout NodeReader,
                                              environment: SecretEnvironment) -> Configuration.Route? {
        switch (f["upstream"], f["destinations"]) {
        case (nil, nil):
            reader.problem("\(key).upstream", "is required (or destinations)")
            return nil
        case (_?, _?):
            reader.problem("\(key).destinations", "upstream and destinations are mutually exclusive: use one")
            return nil
        case (let node?, nil):
            let upstream = loadUpstream(node, at: "\(key).upstream", reader: &reader, environment: environment)
            guard let name, let path, let verify, let upstream else { return nil }
            return Configuration.Route(name: name, path: path, verify: verify, dedup: dedup, upstream: upstream)
        case (nil, let node?):
            let destinations = loadDestinations(node, at: "\(key).destinations", productGroups: productGroups, reader: &reader,
                                                environment: environment)
            guard let name, let path, let verify, let destinations else { return nil }
            if verify.scheme != .vecu {
                // Filters match event types, and only the CloudEvents envelope carries one: every
                // event of another scheme would silently miss a filter that names types.
                for (j, destination) in destinations.enumerated() where destination.filter != .everything {
                    reader.problem("\(key).destinations[\(j)].filter",
                                   "filters match event types, which only vecu events carry; \(verify.scheme.rawValue) events have none")
                }
            }
            return Configuration.Route(name: name, path: path, verify: verify, dedup: dedup, destinations: destinations, isFanOut: true)
        }
    }

    /// `product_groups`: a mapping of group names to non-empty lists of wildcard patterns (a
    /// repeated name is already refused by the YAML parser).
    private static func loadProductGroups(_ node: Node, reader: inout NodeReader) -> [String: [String]] {
        guard let map = reader.mapping(node, at: "product_groups") else { return [:] }
        var groups: [String: [String]] = [:]
        for (k, v) in map {
            guard let name = reader.string(k, at: "product_groups") else { continue }
            let key = "product_groups.\(name)"
            if !EventFilter.isValidGroupName(name) {
                reader.problem(key, "expected a group name of letters, digits and '_' (e.g. CUSTODY_SDK)")
                continue
            }
            guard let patterns = loadTokenList(v, at: key, wildcards: true, reader: &reader) else { continue }
            if patterns.isEmpty { reader.problem(key, "a product group expands to at least one pattern") }
            groups[name] = patterns
        }
        return groups
    }

    /// A list of event types (`wildcards` false) or patterns; nil if it is not a list of valid entries.
    private static func loadTokenList(_ node: Node, at key: String, wildcards: Bool, reader: inout NodeReader) -> [String]? {
        guard let list = reader.sequence(node, at: key) else { return nil }
        var entries: [String] = []
        var valid = true
        for (i, item) in list.enumerated() {
            guard let text = reader.string(item, at: "\(key)[\(i)]") else {
                valid = false
                continue
            }
            if let message = EventFilter.problem(with: text, wildcards: wildcards) {
                reader.problem("\(key)[\(i)]", message)
                valid = false
            } else if entries.contains(where: { $0.utf8.elementsEqual(text.utf8) }) {
                reader.problem("\(key)[\(i)]", "\"\(text)\" appears more than once")
                valid = false
            } else {
                entries.append(text)
            }
        }
        return valid ? entries : nil
    }

    private static func loadDestinations(_ node: Node, at key: String, productGroups: [String: [String]], reader: inout NodeReader,
                                         environment: SecretEnvironment) -> [Configuration.Destination]? {
        guard let list = reader.sequence(node, at: key) else { return nil }
        if list.isEmpty {
            reader.problem(key, "at least one destination is required")
            return nil
        }
        var destinations: [Configuration.Destination] = []
        var seen: [String: Int] = [:]
        var valid = true
        for (i, item) in list.enumerated() {
            let dkey = "\(key)[\(i)]"
            guard let map = reader.mapping(item, at: dkey) else {
                valid = false
                continue
            }
            let f = reader.fields(map, at: dkey, allowed: ["name", "filter", "upstream"])
            let name = reader.required(f, "name", at: dkey).flatMap { reader.string($0, at: "\(dkey).name") }
            if let name {
                if !isValidName(name) {
                    reader.problem("\(dkey).name", "expected letters, digits, '-', '_' or '.', got \"\(name)\"")
                } else if let first = seen[name] {
                    reader.problem("\(dkey).name", "duplicate destination name \"\(name)\" (also \(key)[\(first)].name)")
                } else {
                    seen[name] = i
                }
            }
            var filter: EventFilter? = .everything
            if let n = f["filter"] {
                filter = loadFilter(n, at: "\(dkey).filter", productGroups: productGroups, reader: &reader)
            }
            let upstream = reader.required(f, "upstream", at: dkey).flatMap {
                loadUpstream($0, at: "\(dkey).upstream", reader: &reader, environment: environment)
            }
            guard let name, let filter, let upstream else {
                valid = false
                continue
            }
            destinations.append(Configuration.Destination(name: name, filter: filter, upstream: upstream))
        }
        return valid ? destinations : nil
    }

    /// `filter`: the guide's four lists in snake_case; groups must be defined in `product_groups`.
    private static func loadFilter(_ node: Node, at key: String, productGroups: [String: [String]],
                                   reader: inout NodeReader) -> EventFilter? {
        guard let map = reader.mapping(node, at: key) else { return nil }
        let f = reader.fields(map, at: key, allowed: ["exclude", "include", "patterns", "product_groups"])
        var filter = EventFilter()
        var valid = true
        for (name, wildcards) in [("exclude", false), ("include", false), ("patterns", true)] {
            guard let n = f[name] else { continue }
            guard let entries = loadTokenList(n, at: "\(key).\(name)", wildcards: wildcards, reader: &reader) else {
                valid = false
                continue
            }
            switch name {
            case "exclude": filter.exclude = entries
            case "include": filter.include = entries
            default: filter.patterns = entries
            }
        }
        if let n = f["product_groups"], let list = reader.sequence(n, at: "\(key).product_groups") {
            for (i, item) in list.enumerated() {
                let gkey = "\(key).product_groups[\(i)]"
                guard let group = reader.string(item, at: gkey) else {
                    valid = false
                    continue
                }
                guard let expansion = productGroups[group] else {
                    let known = productGroups.keys.sorted().joined(separator: ", ")
                    reader.problem(gkey, "unknown product group \"\(group)\" (defined in product_groups: \(known.isEmpty ? "none" : known))")
                    valid = false
                    continue
                }
                if filter.productGroups.contains(group) {
                    reader.problem(gkey, "\"\(group)\" appears more than once")
                    valid = false
                    continue
                }
                filter.productGroups.append(group)
                filter.productGroupPatterns += expansion
            }
        } else if f["product_groups"] != nil {
            valid = false
        }
        return valid ? filter : nil
    }

    private static func loadVerify(_ node: Node, at key: String, reader: inout NodeReader, environment: SecretEnvironment) -> Configuration.Verify? {
        guard let map = reader.mapping(node, at: key) else { return nil }
        // The scheme decides which other keys are allowed, so it is read first.
        var scheme: SignatureSchemeName?
        let schemeNode = map.first { $0.key.scalar?.string == "scheme" }?.value
        if let schemeNode, case .scalar(let s) = schemeNode { scheme = SignatureSchemeName(rawValue: s.string) }
        let f = reader.fields(map, at: key, allowed: Set(["scheme", "secrets", "tolerance"] + (scheme?.extraKeys ?? [])))
        if let n = reader.required(f, "scheme", at: key), let text = reader.string(n, at: "\(key).scheme"), scheme == nil {
            let known = SignatureSchemeName.allCases.map(\.rawValue).joined(separator: ", ")
            reader.problem("\(key).scheme", "unknown scheme \"\(text)\" (known: \(known))")
        }
        var secrets: [Secret] = []
        if let n = reader.required(f, "secrets", at: key), let list = reader.sequence(n, at: "\(key).secrets") {
            if list.isEmpty { reader.problem("\(key).secrets", "at least one secret is required") }
            for (i, item) in list.enumerated() {
                let k = "\(key).secrets[\(i)]"
                // Each scheme has its own rule; with an unknown scheme the general minimum still applies.
                let loaded = loadSecret(item, at: k, reader: &reader, environment: environment,
                                        minimumBytes: scheme == nil ? minimumSecretBytes : 1)
                if let scheme, let secret = loaded.flatMap({ applySecretRule($0, scheme: scheme, at: k, reader: &reader) }) {
                    secrets.append(secret)
                }
            }
        }
        var tolerance = ConfigDuration.seconds(300)
        if let n = f["tolerance"], let d = reader.duration(n, at: "\(key).tolerance", minimum: .seconds(1)) {
            if d > .seconds(24 * 3600) { reader.problem("\(key).tolerance", "must be at most 24h, got \(d)") }
            if let scheme, !scheme.signsTime { reader.problem("\(key).tolerance", "\(scheme.rawValue) signs no time, so there is no window") }
            tolerance = d
        }
        let hmac = scheme == .hmac ? loadGenericHMAC(f, at: key, reader: &reader) : nil
        if let hmac, hmac.timestampHeader == nil, f["tolerance"] != nil {
            reader.problem("\(key).tolerance", "applies only with timestamp_header")
        }
        guard let scheme, !secrets.isEmpty, scheme != .hmac || hmac != nil else { return nil }
        var verify = Configuration.Verify(scheme: scheme, secrets: secrets, tolerance: tolerance)
        verify.hmac = hmac
        return verify
    }

    static func loadSecret(_ node: Node, at key: String, reader: inout NodeReader, environment: SecretEnvironment,
                           minimumBytes: Int = minimumSecretBytes) -> Secret? {
        guard let map = reader.mapping(node, at: key) else { return nil }
        let f = reader.fields(map, at: key, allowed: ["env", "file", "value"])
        guard f.count == 1, let (kind, valueNode) = f.first else {
            if !f.isEmpty || map.count == 0 { reader.problem(key, "expected exactly one of env, file or value") }
            return nil
        }
        guard let text = reader.string(valueNode, at: "\(key).\(kind)") else { return nil }
        let secret: Secret
        switch kind {
        case "env":
            guard let value = environment.variables[text], !value.isEmpty else {
                reader.problem(key, "environment variable \(text) is not set")
                return nil
            }
            secret = Secret(origin: .environment(text), bytes: Array(value.utf8))
        case "file":
            do {
                var bytes = try environment.readFile(text)
                // A trailing newline is how most tools write a file, not part of the secret.
                while let last = bytes.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") { bytes.removeLast() }
                secret = Secret(origin: .file(text), bytes: bytes)
            } catch {
                reader.problem(key, "cannot read secret file \(text): \(error)")
                return nil
            }
        default:
            secret = Secret(origin: .literal, bytes: Array(text.utf8))
        }
        if secret.bytes.count < minimumBytes {
            reader.problem(key, "secret is \(secret.bytes.count) bytes; at least \(minimumBytes) are required")
            return nil
        }
        return secret
    }

    private static func loadUpstream(_ node: Node, at key: String, reader: inout NodeReader, environment: SecretEnvironment) -> Configuration.Upstream? {
        guard let map = reader.mapping(node, at: key) else { return nil }
        let f = reader.fields(map, at: key, allowed: ["url", "timeout", "max_connections", "add_headers", "ca_file", "tls_insecure_skip_verify"])
        var upstream: Configuration.Upstream?
        if let n = reader.required(f, "url", at: key), let text = reader.string(n, at: "\(key).url") {
            if let url = UpstreamURL(parsing: text) {
                upstream = Configuration.Upstream(url: url)
            } else {
                reader.problem("\(key).url", "expected http://host:port/path, got \"\(text)\"")
            }
        }
        if let n = f["timeout"], let d = reader.duration(n, at: "\(key).timeout", minimum: .init(milliseconds: 100)) {
            if d >= senderDeadline {
                reader.problem("\(key).timeout", "must be below the sender's \(senderDeadline) deadline, got \(d)")
            }
            upstream?.timeout = d
        }
        if let n = f["ca_file"], let path = reader.string(n, at: "\(key).ca_file") {
            do { _ = try environment.readFile(path) } catch { reader.problem("\(key).ca_file", "cannot read \(path): \(error)") }
            upstream?.caFile = path
        }
        if let n = f["tls_insecure_skip_verify"], let skip = reader.boolean(n, at: "\(key).tls_insecure_skip_verify") {
            upstream?.tlsInsecureSkipVerify = skip
        }
        if let up = upstream, up.url.scheme == .http, up.caFile != nil || up.tlsInsecureSkipVerify {
            reader.problem("\(key).url", "ca_file and tls_insecure_skip_verify apply only to https:// upstreams")
        }
        if let n = f["max_connections"], let v = reader.integer(n, at: "\(key).max_connections", in: 1...4096) {
            upstream?.maxConnections = v
        }
        if let n = f["add_headers"], let m = reader.mapping(n, at: "\(key).add_headers") {
            var seen = Set<String>()
            for (k, v) in m {
                guard let name = reader.string(k, at: "\(key).add_headers"),
                      let value = reader.string(v, at: "\(key).add_headers.\(name)") else { continue }
                let hkey = "\(key).add_headers.\(name)"
                if !HeaderPolicy.isValidName(name) {
                    reader.problem(hkey, "not a valid header name")
                } else if HeaderPolicy.isReservedForAddHeaders(name) {
                    reader.problem(hkey, "this header is set by hookgate or hop-by-hop and cannot be added")
                } else if !seen.insert(name.lowercased()).inserted {
                    reader.problem(hkey, "duplicate header name")
                } else if !HeaderPolicy.isValidValue(value) {
                    reader.problem(hkey, "header values may not contain control characters")
                } else {
                    upstream?.addHeaders.append((name, value))
                }
            }
        }
        return upstream
    }
}

/// Walks a YAML node tree, keeping the problems it finds.
struct NodeReader {
    var problems: [ConfigurationProblem] = []

    mutating func problem(_ key: String, _ message: String) {
        problems.append(ConfigurationProblem(key: key, message: message))
    }

    /// The mapping's entries by key; unknown and repeated keys are problems.
    mutating func fields(_ map: Node.Mapping, at key: String, allowed: Set<String>) -> [String: Node] {
        var result: [String: Node] = [:]
        for (k, v) in map {
            guard let name = k.scalar?.string else {
                problem(key, "keys must be plain strings")
                continue
            }
            let path = key.isEmpty ? name : "\(key).\(name)"
            if !allowed.contains(name) {
                problem(path, "unknown key (allowed here: \(allowed.sorted().joined(separator: ", ")))")
            } else if result[name] != nil {
                problem(path, "key appears more than once")
            } else {
                result[name] = v
            }
        }
        return result
    }

    mutating func required(_ fields: [String: Node], _ name: String, at key: String) -> Node? {
        if let n = fields[name] { return n }
        problem(key.isEmpty ? name : "\(key).\(name)", "is required")
        return nil
    }

    mutating func mapping(_ node: Node, at key: String) -> Node.Mapping? {
        if case .mapping(let m) = node { return m }
        problem(key, "expected a mapping")
        return nil
    }

    mutating func sequence(_ node: Node, at key: String) -> Node.Sequence? {
        if case .sequence(let s) = node { return s }
        problem(key, "expected a list")
        return nil
    }

    mutating func string(_ node: Node, at key: String) -> String? {
        if case .scalar(let s) = node { return s.string }
        problem(key, "expected a single value")
        return nil
    }

    mutating func integer(_ node: Node, at key: String, in range: ClosedRange<Int>) -> Int? {
        guard let text = string(node, at: key) else { return nil }
        guard let v = Int(text), range.contains(v) else {
            problem(key, "expected a whole number from \(range.lowerBound) to \(range.upperBound), got \"\(text)\"")
            return nil
        }
        return v
    }

    mutating func boolean(_ node: Node, at key: String) -> Bool? {
        guard let text = string(node, at: key) else { return nil }
        switch text {
        case "true": return true
        case "false": return false
        default:
            problem(key, "expected true or false, got \"\(text)\"")
            return nil
        }
    }

    mutating func duration(_ node: Node, at key: String, minimum: ConfigDuration) -> ConfigDuration? {
        guard let text = string(node, at: key) else { return nil }
        guard let d = ConfigDuration(parsing: text) else {
            problem(key, "expected a duration such as 500ms, 25s, 5m or 72h, got \"\(text)\"")
            return nil
        }
        guard d >= minimum else {
            problem(key, "must be at least \(minimum), got \(d)")
            return nil
        }
        return d
    }
}
