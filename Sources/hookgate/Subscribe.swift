import ArgumentParser
import Foundation
import HookgateCore
import HookgateServer

/// Where the API is and how hookgate authenticates to it (shared by the three commands).
struct PlatformAPIOptions: ParsableArguments {
    @Option(help: "Base URL of the platform's configuration API (https://...).")
    var api: String

    @Option(name: .customLong("token-env"), help: "Environment variable holding the OAuth2 access token.")
    var tokenEnv: String?

    @Option(name: .customLong("token-file"), help: "File holding the OAuth2 access token.")
    var tokenFile: String?

    @Option(name: .customLong("ca-file"), help: "PEM bundle to trust for the API instead of the system store.")
    var caFile: String?

    @Option(help: "Seconds to wait for the API's answer.")
    var timeout: Int = 30

    func validate() throws {
        if (tokenEnv == nil) == (tokenFile == nil) { throw ValidationError("give exactly one of --token-env or --token-file") }
        guard let url = UpstreamURL(parsing: api), url.scheme == .https else {
            throw ValidationError("--api: expected an https:// URL (the token must not travel in clear), got \"\(api)\"")
        }
        if !(1...300).contains(timeout) { throw ValidationError("--timeout: expected 1 to 300 seconds") }
    }

    /// The token, read once; never printed.
    func token() throws -> String {
        var text: String
        if let tokenEnv {
            guard let value = ProcessInfo.processInfo.environment[tokenEnv], !value.isEmpty else {
                printError("environment variable \(tokenEnv) is not set")
                throw ExitCode(1)
            }
            text = value
        } else {
            do {
                text = String(decoding: try ConfigurationFile.readFile(tokenFile!), as: UTF8.self)
            } catch {
                printError("cannot read the token file \(tokenFile!): \(error)")
                throw ExitCode(1)
            }
        }
        while let last = text.last, last == "\n" || last == "\r" { text.removeLast() }
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            printError("the token must be printable ASCII without spaces")
            throw ExitCode(1)
        }
        return text
    }

    /// `{api}/event-relay/subscriptions`, plus `/ID` when given.
    func collection(_ id: String? = nil) -> String {
        var base = api
        while base.hasSuffix("/") { base.removeLast() }
        return base + "/event-relay/subscriptions" + (id.map { "/" + $0 } ?? "")
    }

    func send(_ method: PlatformAPIClient.Method, _ url: String, json: [UInt8]? = nil) throws -> PlatformAPIClient.Answer {
        switch PlatformAPIClient.send(method, url: url, token: try token(), json: json, caFile: caFile, timeoutSeconds: timeout) {
        case .success(let answer): return answer
        case .failure(let failure):
            switch failure {
            case .timedOut, .noAnswer:
                // The request may have arrived: say so rather than promise nothing changed.
                printError("\(failure); nothing was written here, but the API may have acted on the request (see `hookgate subscriptions list`)")
            case .invalidURL, .tls:
                printError("\(failure); nothing was sent")
            }
            throw ExitCode(1)
        }
    }

    /// Explains a refusal (the body's `message`/`error` for a 4xx, never the whole body) and exits 1.
    func refuse(_ answer: PlatformAPIClient.Answer, _ what: String) throws -> Never {
        let detail: String
        switch answer.status {
        case 401: detail = "the API refused the token (401 Unauthorized)"
        case 403: detail = "the token may not \(what) (403 Forbidden)"
        case 409: detail = "the API reports a conflict (409)" + (Self.message(answer.body).map { ": " + $0 } ?? "")
        case 400...499: detail = "the API refused the request (\(answer.status))" + (Self.message(answer.body).map { ": " + $0 } ?? "")
        default: detail = "the API failed (\(answer.status)); try again later"
        }
        printError("cannot \(what): \(detail)")
        throw ExitCode(1)
    }

    /// A short, printable `message` (or `error`) from a JSON error body.
    static func message(_ body: [UInt8]) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { return nil }
        guard let text = (object["message"] as? String) ?? (object["error"] as? String) else { return nil }
        let shown = printable(text)
        return shown.isEmpty ? nil : shown
    }

    /// Text from the API made safe for a terminal: control characters (escape sequences) dropped,
    /// at most 300 characters.
    static func printable(_ text: String) -> String {
        String(text.unicodeScalars.filter { $0.value >= 0x20 && !(0x7F...0x9F).contains($0.value) }.prefix(300).map(Character.init))
    }
}

/// `hookgate subscribe`: the guide's steps 1 and 2.
struct Subscribe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Register this endpoint with the platform (the guide's step 1) and save the HMAC secret it returns (step 2).")

    @OptionGroup var platform: PlatformAPIOptions

    @Option(help: "The public HTTPS URL the platform will deliver to.")
    var url: String

    @Option(name: .customLong("product-group"), help: "Subscribe to a product group (repeatable).")
    var productGroups: [String] = []

    @Option(name: .customLong("pattern"), help: "Subscribe to event types matching a wildcard pattern (repeatable).")
    var patterns: [String] = []

    @Option(name: .customLong("include"), help: "Subscribe to an exact event type (repeatable).")
    var include: [String] = []

    @Option(name: .customLong("exclude"), help: "Never deliver this exact event type (repeatable).")
    var exclude: [String] = []

    @Option(name: .customLong("from-config"), help: "Take the filters from a route's destinations in this configuration file.")
    var fromConfig: String?

    @Option(help: "The route of --from-config.")
    var route: String?

    @Option(name: .customLong("secret-file"), help: "Where to write the secret from the answer (mode 0600).")
    var secretFile: String

    @Flag(help: "Replace an existing secret file.")
    var force = false

    func validate() throws {
        if let problem = SubscriptionRequest.urlProblem(url) { throw ValidationError(problem) }
        let problems = SubscriptionRequest.problems(productGroups: productGroups, patterns: patterns, include: include, exclude: exclude)
        if !problems.isEmpty { throw ValidationError(problems.joined(separator: "\n")) }
        if (fromConfig == nil) != (route == nil) { throw ValidationError("--from-config and --route go together") }
        if fromConfig != nil && !(productGroups.isEmpty && patterns.isEmpty && include.isEmpty && exclude.isEmpty) {
            throw ValidationError("--from-config takes the filters from the configuration: give no filter flags with it")
        }
    }

    func run() throws {
        let filter = try self.filter()
        // The file is claimed before the API is asked: the secret is shown once, so a place
        // that cannot take it must be found out before the subscription exists.
        let target: SecretFile
        do {
            target = try SecretFile(path: secretFile, replace: force)
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
        var generator = SystemRandomNumberGenerator()
        let request = SubscriptionRequest(url: url, secret: SubscriptionRequest.makeSecret(using: &generator), filter: filter)
        let answer: PlatformAPIClient.Answer
        do {
            answer = try platform.send(.post, platform.collection(), json: Array(request.json.utf8))
        } catch {
            target.discard()
            throw error
        }
        guard (200...299).contains(answer.status) else {
            target.discard()
            try platform.refuse(answer, "create the subscription")
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any],
              let id = object["id"] as? String, Unsubscribe.isValidID(id) else {
            target.discard()
            printError("the API answered \(answer.status) without a usable subscription id; nothing was written")
            throw ExitCode(1)
        }
        let status = PlatformAPIOptions.printable(object["status"] as? String ?? "unknown")
        guard let secret = (object["authConfig"] as? [String: Any])?["secret"] as? String,
              secret.utf8.count >= ConfigurationLoader.minimumSecretBytes else {
            target.discard()
            printError("subscription \(id) was created but its answer carries no usable authConfig.secret (at least \(ConfigurationLoader.minimumSecretBytes) bytes); delete it with `hookgate unsubscribe \(id)` and subscribe again")
            throw ExitCode(1)
        }
        do {
            try target.commit(Array(secret.utf8) + [UInt8(ascii: "\n")])
        } catch {
            printError("subscription \(id) was created but the secret could not be saved (\(error)); delete it with `hookgate unsubscribe \(id)` and subscribe again")
            throw ExitCode(1)
        }
        print("subscription \(id) status \(status)")
        print("secret written to \(secretFile)")
    }

    /// The filters of the flags, or the union of a route's destinations' filters.
    private func filter() throws -> EventFilter {
        guard let fromConfig, let route else {
            return EventFilter(exclude: exclude, include: include, patterns: patterns, productGroups: productGroups)
        }
        let configuration: Configuration
        switch ConfigurationFile.load(path: fromConfig) {
        case .success(let c): configuration = c
        case .failure(let problems):
            for problem in problems.problems { printError(problem.description) }
            throw ExitCode(1)
        }
        guard let found = configuration.routes.first(where: { $0.name == route }) else {
            printError("no route named \"\(route)\" in \(fromConfig) (routes: \(configuration.routes.map(\.name).joined(separator: ", ")))")
            throw ExitCode(1)
        }
        return EventFilter.union(found.destinations.map(\.filter))
    }
}

/// `hookgate subscriptions ...`: reading the platform's subscriptions.
struct Subscriptions: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The platform's subscriptions.", subcommands: [List.self])

    /// `hookgate subscriptions list`.
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the subscriptions the token can see (id, status, url).")

        @OptionGroup var platform: PlatformAPIOptions

        func run() throws {
            let answer = try platform.send(.get, platform.collection())
            guard (200...299).contains(answer.status) else { try platform.refuse(answer, "list the subscriptions") }
            let parsed = try? JSONSerialization.jsonObject(with: Data(answer.body))
            let items = (parsed as? [[String: Any]])
                ?? ((parsed as? [String: Any]).flatMap { o in ["items", "subscriptions", "data"].lazy.compactMap { o[$0] as? [[String: Any]] }.first })
            guard let items else {
                printError("the API's answer is not a list of subscriptions")
                throw ExitCode(1)
            }
            // Only these fields: an answer that carries a secret must not put it on the terminal.
            for item in items {
                print([item["id"], item["status"], item["url"]].map { PlatformAPIOptions.printable(($0 as? String) ?? "-") }
                    .joined(separator: "\t"))
            }
        }
    }
}

/// `hookgate unsubscribe ID`.
struct Unsubscribe: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Delete a subscription (the guide's way to retire a secret).")

    @OptionGroup var platform: PlatformAPIOptions

    @Argument(help: "The subscription id.")
    var id: String

    func validate() throws {
        guard Self.isValidID(id) else { throw ValidationError("expected a subscription id of letters, digits, '-', '_' or '.'") }
    }

    /// Ids as the guide shows them (`01JA4KXYZ...`): safe in a URL path and on a terminal.
    static func isValidID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 200 && !id.hasPrefix(".")
            && id.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || "-_.".utf8.contains($0) }
    }

    func run() throws {
        let answer = try platform.send(.delete, platform.collection(id))
        guard (200...299).contains(answer.status) else { try platform.refuse(answer, "delete subscription \(id)") }
        print("subscription \(id) deleted")
    }
}

/// A secret file written atomically with mode 0600: a temporary file beside it (claimed
/// first), filled and fsynced, then moved into place, and the folder fsynced. Without
/// `replace`, the move is a hard link, which fails if the file appeared meanwhile.
struct SecretFile {
    let path: String
    let temporary: String
    let replace: Bool
    private let fd: Int32

    /// Why the file could not be claimed or written.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    init(path: String, replace: Bool) throws {
        self.path = path
        self.replace = replace
        if !replace && FileManager.default.fileExists(atPath: path) {
            throw Failure(description: "\(path) exists; give --force to replace it (nothing was sent)")
        }
        let folder = (path as NSString).deletingLastPathComponent
        temporary = (folder.isEmpty ? "." : folder) + "/.hookgate-secret-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure(description: "cannot create a file beside \(path): \(String(cString: strerror(errno))) (nothing was sent)") }
    }

    func discard() {
        close(fd)
        unlink(temporary)
    }

    func commit(_ bytes: [UInt8]) throws {
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count, fchmod(fd, 0o600) == 0, fsync(fd) == 0 else {
            let why = String(cString: strerror(errno))
            unlink(temporary)
            throw Failure(description: why)
        }
        if replace {
            guard rename(temporary, path) == 0 else {
                let why = String(cString: strerror(errno))
                unlink(temporary)
                throw Failure(description: why)
            }
        } else {
            let linked = link(temporary, path)
            let why = String(cString: strerror(errno))
            unlink(temporary)
            guard linked == 0 else { throw Failure(description: "\(path): \(why)") }
        }
        let folder = (path as NSString).deletingLastPathComponent
        let dir = open(folder.isEmpty ? "." : folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 {
            fsync(dir)
            close(dir)
        }
    }
}
