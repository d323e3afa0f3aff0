/// The gateway's configuration after loading and validation: every value present, every
/// default applied, every secret read. Defaults live here and nowhere else.
public struct Configuration: Sendable {
    /// `listen` (or `listen.address`): inbound address. Default `127.0.0.1:8080`.
    public var listen: ListenAddress = ListenAddress(host: "127.0.0.1", port: 8080)
    /// `listen.tls`: when set, the listener speaks HTTPS only.
    public var tls: TLSFiles?
    /// `workers`: number of event loops; `auto` = one per core. Default 1.
    public var workers: WorkerCount = .fixed(1)
    /// `limits`: bounds on what a client may send.
    public var limits = Limits()
    /// `shutdown_grace`: how long SIGTERM waits for in-flight forwards. Default 25s.
    public var shutdownGrace: ConfigDuration = .seconds(25)
    /// `routes`: at least one.
    public var routes: [Route] = []
    /// `product_groups`: what each product group name expands to (wildcard patterns), for the
    /// destinations' `filter.product_groups`. Default none.
    public var productGroups: [String: [String]] = [:]
    /// `admin.listen`: the operator's listener (health, readiness, metrics). Off when absent.
    public var adminListen: ListenAddress?
    /// `ledger`: where delivered ids are remembered (memory, sqlite or redis). Default memory.
    public var ledger = LedgerConfiguration()
    /// `spool`: the durable last-chance spool (off when nil).
    public var spool: SpoolConfiguration?
    /// `trusted_proxies`: peers (CIDRs or addresses) whose `X-Forwarded-For`, `X-Forwarded-Proto`,
    /// `X-Forwarded-Host`, `X-Real-IP` and `Forwarded` are believed. Default none.
    public var trustedProxies: [IPNetwork] = []
    /// `shutdown_delay`: after SIGTERM, how long `/readyz` says 503 while connections are still
    /// accepted and served (load balancers deregister the instance), before the drain. Default 5s.
    public var shutdownDelay: ConfigDuration = .seconds(5)
    /// `listen.proxy_protocol`: every connection starts with a PROXY protocol v1 or v2 header
    /// whose source address becomes the client's. Default false.
    public var proxyProtocol = false
    /// `log_level`: the least severe level the JSON log writes (the access log is written
    /// regardless). Read at start-up. Default `info`.
    public var logLevel: LogLevel = .info

    public init() {}

    /// Inbound limits (`limits.*`).
    public struct Limits: Sendable, Equatable {
        /// `max_body_bytes`: larger bodies get 413 and are never forwarded. Default 1 MiB.
        public var maxBodyBytes = 1_048_576
        /// `max_header_bytes`: request line plus headers. Default 16 KiB.
        public var maxHeaderBytes = 16_384
        /// `max_connections`: open client connections, all workers together (each worker gets an
        /// equal share); beyond it new connections wait in the kernel's backlog. Default 10000.
        public var maxConnections = 10_000
        /// `client_timeout`: time allowed to receive a whole request (head and body), and the
        /// idle time after which a keep-alive connection is closed. Default 15s.
        public var clientTimeout: ConfigDuration = .seconds(15)
        public init() {}
    }

    /// One webhook endpoint (`routes[i]`).
    public struct Route: Sendable {
        /// `name`: used in logs and as part of the dedup key. Required, unique.
        public var name: String
        /// `path`: exact inbound path. Required, unique, starts with `/`.
        public var path: String
        public var verify: Verify
        public var dedup = Dedup()
        /// `upstream` (one destination, named after the route, no filter) or `destinations`
        /// (one or more, each with its own filter, upstream, pool and dedup keys). Never empty.
        public var destinations: [Destination]
        /// Whether the route was written with `destinations:` (forwards then carry
        /// `X-Hookgate-Destination`, and hookgate answers for several destinations itself).
        public var isFanOut: Bool
        /// `spool`: this route's failed last attempts are spooled (needs the top-level `spool`).
        public var spool: RouteSpool?

        /// The one-destination form (`upstream:`).
        public init(name: String, path: String, verify: Verify, dedup: Dedup = Dedup(), upstream: Upstream) {
            self.init(name: name, path: path, verify: verify, dedup: dedup,
                      destinations: [Destination(name: name, upstream: upstream)], isFanOut: false)
        }

        public init(name: String, path: String, verify: Verify, dedup: Dedup, destinations: [Destination], isFanOut: Bool) {
            self.name = name
            self.path = path
            self.verify = verify
            self.dedup = dedup
            self.destinations = destinations
            self.isFanOut = isFanOut
        }

        /// The first destination's upstream: the route's only one in the `upstream:` form.
        public var upstream: Upstream {
            get { destinations[0].upstream }
            set { destinations[0].upstream = newValue }
        }

        /// The dedup ledger of destination `i`: the route name in the `upstream:` form (so dedup
        /// state from before `destinations:` existed stays valid), `route/destination` otherwise
        /// (a `/` cannot occur in either name, so no two destinations share a ledger).
        public func ledgerName(_ i: Int) -> String {
            isFanOut ? "\(name)/\(destinations[i].name)" : name
        }
    }

    /// `routes[i].destinations[j]`: where events of the filter's types go.
    public struct Destination: Sendable {
        /// `name`: unique within the route; letters, digits, `-`, `_` or `.`.
        public var name: String
        /// `filter`: the guide's filter. Default: everything.
        public var filter: EventFilter
        /// `upstream`: every key of a route's `upstream`.
        public var upstream: Upstream

        public init(name: String, filter: EventFilter = .everything, upstream: Upstream) {
            self.name = name
            self.filter = filter
            self.upstream = upstream
        }
    }

    /// `routes[i].verify`.
    public struct Verify: Sendable {
        /// `scheme`: the signature scheme, pinned per route (`SignatureSchemeName`).
        public var scheme: SignatureSchemeName
        /// `secrets`: one or more, each as the scheme's rules say (`SignatureSchemeName.secretRule`);
        /// any of them may sign (rotation). Held as the key bytes (`whsec_` base64 already decoded).
        public var secrets: [Secret]
        /// `tolerance`: allowed |now - timestamp|, past and future. Default 300s.
        public var tolerance: ConfigDuration = .seconds(300)
        /// `header`, `prefix`, `encoding`, `signed`, `timestamp_header`, `id`: the `hmac` scheme only.
        public var hmac: GenericHMACSettings?

        public init(scheme: SignatureSchemeName, secrets: [Secret], tolerance: ConfigDuration = .seconds(300)) {
            self.scheme = scheme
            self.secrets = secrets
            self.tolerance = tolerance
        }
    }

    /// `routes[i].dedup`.
    public struct Dedup: Sendable, Equatable {
        /// `capacity`: delivered ids remembered (LRU). Default 100000.
        public var capacity = 100_000
        /// `ttl`: how long a delivered id is remembered. Default 72h.
        public var ttl: ConfigDuration = .seconds(72 * 3600)
        /// `id`: where the event id comes from (`header:NAME` or `body:/pointer`), instead of the
        /// scheme's own place. Not for `vecu`, whose id is the envelope's.
        public var id: EventIDSource?
        public init() {}
    }

    /// `routes[i].upstream`.
    public struct Upstream: Sendable {
        /// `url`: `http://host:port/path`. Required.
        public var url: UpstreamURL
        /// `timeout`: whole forward, must be below the sender's 30 s. Default 25s.
        public var timeout: ConfigDuration = .seconds(25)
        /// `max_connections`: keep-alive pool size per worker. Default 64.
        public var maxConnections = 64
        /// `ca_file`: PEM bundle trusted for an `https://` upstream instead of the system store.
        public var caFile: String?
        /// `tls_insecure_skip_verify`: do not verify the upstream's certificate (logged as a warning).
        public var tlsInsecureSkipVerify = false
        /// `add_headers`: static headers added to every forwarded request, in file order.
        public var addHeaders: [(name: String, value: String)] = []

        public init(url: UpstreamURL) { self.url = url }
    }
}

/// `listen.tls`: PEM certificate (a chain may follow it in the same file) and private key.
public struct TLSFiles: Sendable, Equatable {
    public var certificate: String
    public var key: String
    public init(certificate: String, key: String) {
        self.certificate = certificate
        self.key = key
    }
}

/// `workers`: a number or `auto`.
public enum WorkerCount: Sendable, Equatable {
    case fixed(Int)
    case auto

    /// The number of event loops to run on a machine with `cores` cores.
    public func resolved(cores: Int) -> Int {
        switch self {
        case .fixed(let n): return n
        case .auto: return max(1, cores)
        }
    }
}

/// A secret as loaded: where it came from (for messages) and its bytes (never logged).
public struct Secret: Sendable {
    public var origin: SecretSource
    public var bytes: [UInt8]
    public init(origin: SecretSource, bytes: [UInt8]) {
        self.origin = origin
        self.bytes = bytes
    }
}

/// Where a secret comes from: `{env: NAME}`, `{file: PATH}`, or `{value: literal}` (tests only).
public enum SecretSource: Sendable, Equatable {
    case environment(String)
    case file(String)
    case literal
}

/// Names of signature schemes; the config picks one per route, unknown names are errors.
public enum SignatureSchemeName: String, Sendable, CaseIterable {
    case vecu
    case standardWebhooks = "standard-webhooks"
    case stripe
    case github
    case slack
    case shopify
    case hmac
}

/// `log_level` values, least to most severe.
public enum LogLevel: String, Sendable, CaseIterable, Comparable {
    case debug, info, warn, error

    public static func < (a: LogLevel, b: LogLevel) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}
