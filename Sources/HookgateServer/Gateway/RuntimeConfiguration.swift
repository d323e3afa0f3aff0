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
            var clientTLS: TLSContext?
            if route.upstream.url.scheme == .https {
                switch TLSContext.client(route.upstream, key: "routes[\(i)].upstream") {
                case .success(let context): clientTLS = context
                case .failure(let p): problems += p.problems
                }
            }
            routes.append(CompiledRoute(route, upstreamTLS: clientTLS))
        }
        guard problems.isEmpty else { return .failure(ConfigurationProblems(problems: problems)) }
        return .success(RuntimeConfiguration(configuration, routes: routes, serverTLS: serverTLS))
    }
}

/// One route with everything a request needs precomputed.
/// Sendable: every property is immutable once the gateway has set `metrics`, which it does before
/// the route serves its first request (start-up and reload, before the workers see it).
final class CompiledRoute: @unchecked Sendable {
    let settings: Configuration.Route
    let admission: EventAdmission
    let upstream: Configuration.Upstream
    let upstreamTLS: TLSContext?
    /// `Host` of the forwarded requests, computed once.
    let upstreamAuthority: String
    /// Set by the gateway before the route serves its first request.
    var metrics: RouteMetrics!

    init(_ settings: Configuration.Route, upstreamTLS: TLSContext?) {
        self.settings = settings
        admission = EventAdmission(route: settings)
        upstream = settings.upstream
        self.upstreamTLS = upstreamTLS
        upstreamAuthority = settings.upstream.url.authority
    }

    var name: String { settings.name }
}
