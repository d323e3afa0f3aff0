import HookgateCore

/// A configuration made ready to serve: routes compiled (signature scheme built, keys
/// prepared). Immutable; a request keeps the one it started under until it is answered.
final class RuntimeConfiguration {
    let configuration: Configuration
    let routes: RouteTable<CompiledRoute>
    let compiledRoutes: [CompiledRoute]

    init(_ configuration: Configuration) {
        self.configuration = configuration
        compiledRoutes = configuration.routes.map(CompiledRoute.init)
        routes = RouteTable(compiledRoutes.map { (path: $0.settings.path, route: $0) })
    }
}

/// One route with everything a request needs precomputed.
final class CompiledRoute: @unchecked Sendable {  // immutable after init
    let settings: Configuration.Route
    let admission: EventAdmission
    let upstream: Configuration.Upstream

    init(_ settings: Configuration.Route) {
        self.settings = settings
        admission = EventAdmission(scheme: settings.verify.scheme.makeScheme(settings.verify))
        upstream = settings.upstream
    }

    var name: String { settings.name }
}
