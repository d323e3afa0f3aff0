import HookgateCore

/// A configuration made ready to serve: routes compiled (signature scheme built, keys
/// prepared), TLS contexts loaded. Immutable; a request keeps the one it started under until it
/// is answered.
final class RuntimeConfiguration: Sendable {
    let configuration: Configuration
    let routes: RouteTable<CompiledRoute>
    let compiledRoutes: [CompiledRoute]
    /// The listener's TLS context, when `listen.tls` is set.
    let serverTLS: TLSContext?

    private init(_ configuration: Configuration, routes: [CompiledRoute], serverTLS: TLSContext?) {
        self.configuration = configuration
        compiledRoutes = routes
        self.routes = RouteTable(routes.map { (path: $0.settings.path, route: $0) })
        self.serverTLS = serverTLS
    }

    /// Loads what the configuration names beyond itself (certificates, keys, CA files); every
    /// problem names its key.
    static func make(_ configuration: Configuration) -> Result<RuntimeConfiguration, ConfigurationProblems> {
        var problems: [ConfigurationProblem] = []
        var serverTLS: TLSContext?
        if let files = configuration.tls {
            switch TLSContext.server(files) {
            case .success(let context): serverTLS = context
            case .failure(let p): problems += p.problems
            }
        }
        var routes: [CompiledRoute] = []
        for (i, route) in configuration.routes.enumerated() {
            var clientTLS: [TLSContext?] = []
            for (j, destination) in route.destinations.enumerated() {
                var context: TLSContext?
                if destination.upstream.url.scheme == .https {
                    let key = route.isFanOut ? "routes[\(i)].destinations[\(j)].upstream" : "routes[\(i)].upstream"
                    switch TLSContext.client(destination.upstream, key: key) {
                    case .success(let c): context = c
                    case .failure(let p): problems += p.problems
                    }
                }
                clientTLS.append(context)
            }
            routes.append(CompiledRoute(route, upstreamTLS: clientTLS))
        }
        guard problems.isEmpty else { return .failure(ConfigurationProblems(problems: problems)) }
        return .success(RuntimeConfiguration(configuration, routes: routes, serverTLS: serverTLS))
    }
}

/// One route with everything a request needs precomputed.
/// Sendable: every property is immutable once the gateway has set `metrics` (`destinations` is
/// only set in `init`), which it does before the route serves its first request (start-up and
/// reload, before the workers see it).
final class CompiledRoute: @unchecked Sendable {
    let settings: Configuration.Route
    let admission: EventAdmission
    /// In configuration order; one for the `upstream:` form.
    private(set) var destinations: [CompiledDestination] = []
    /// Set by the gateway before the route serves its first request.
    var metrics: RouteMetrics!

    init(_ settings: Configuration.Route, upstreamTLS: [TLSContext?]) {
        self.settings = settings
        admission = EventAdmission(route: settings)
        destinations = settings.destinations.enumerated().map { i, destination in
            CompiledDestination(destination, ledgerName: settings.ledgerName(i), header: settings.isFanOut ? destination.name : nil,
                                upstreamTLS: upstreamTLS[i], route: self)
        }
    }

    var name: String { settings.name }
}

/// One destination of a route: its upstream, filter and dedup ledger, with a pool per worker.
/// Sendable for the same reason as `CompiledRoute`: immutable once the gateway has set `metrics`,
/// before the route serves its first request.
final class CompiledDestination: @unchecked Sendable {
    let name: String
    let filter: EventFilter
    let upstream: Configuration.Upstream
    let upstreamTLS: TLSContext?
    /// `Host` of the forwarded requests, computed once.
    let upstreamAuthority: String
    /// The key of its dedup ledger, local and in the store (`Configuration.Route.ledgerName`).
    let ledgerName: String
    /// `X-Hookgate-Destination` of its forwards (the `destinations:` form only).
    let header: String?
    unowned let route: CompiledRoute
    /// Set by the gateway before the route serves its first request.
    var metrics: DestinationMetrics!

    init(_ settings: Configuration.Destination, ledgerName: String, header: String?, upstreamTLS: TLSContext?, route: CompiledRoute) {
        name = settings.name
        filter = settings.filter
        upstream = settings.upstream
        self.upstreamTLS = upstreamTLS
        upstreamAuthority = settings.upstream.url.authority
        self.ledgerName = ledgerName
        self.header = header
        self.route = route
    }
}
