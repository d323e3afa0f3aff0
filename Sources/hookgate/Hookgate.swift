import ArgumentParser
import Foundation
import HookgateCore
import HookgateServer
import Logging

@main
struct Hookgate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hookgate",
        abstract: "A webhook verification gateway: verifies, de-duplicates and forwards signed events.",
        subcommands: [Serve.self, Check.self, Sign.self, Demo.self, Subscribe.self, Subscriptions.self, Unsubscribe.self]
    )
}

/// Loads the file or prints every problem and exits 1.
func loadOrExit(_ path: String) throws -> Configuration {
    switch ConfigurationFile.load(path: path) {
    case .success(let configuration):
        return configuration
    case .failure(let problems):
        for problem in problems.problems { printError(problem.description) }
        throw ExitCode(1)
    }
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway (SIGTERM or Ctrl-C drains and stops it).")

    @Option(help: "Path of the YAML configuration file.")
    var config: String

    func run() throws {
        LoggingSystem.bootstrap(JSONLogHandler.init)
        // A SIGHUP that arrives before the reload handler is installed must not end the process.
        signal(SIGHUP, SIG_IGN)
        let log = Logger(label: "hookgate")
        let configuration: Configuration
        switch ConfigurationFile.load(path: config) {
        case .success(let c): configuration = c
        case .failure(let problems):
            for problem in problems.problems {
                log.error("invalid configuration", metadata: ["key": .string(problem.key), "problem": .string(problem.message)])
            }
            throw ExitCode(1)
        }
        warnAboutLiteralSecrets(configuration, log: log)
        do {
            let gateway = try Gateway(configuration: configuration, configurationPath: config)
            try gateway.start()
            gateway.handleSignals()
            gateway.wait()
        } catch {
            log.error("cannot start", metadata: ["error": .string("\(error)")])
            throw ExitCode(1)
        }
    }
}

func warnAboutLiteralSecrets(_ configuration: Configuration, log: Logger) {
    for (i, route) in configuration.routes.enumerated() {
        for (j, destination) in route.destinations.enumerated() where destination.upstream.tlsInsecureSkipVerify {
            let key = route.isFanOut ? "routes[\(i)].destinations[\(j)].upstream" : "routes[\(i)].upstream"
            log.warning("upstream certificate verification is off; anyone on the path can read and change events",
                        metadata: ["key": .string("\(key).tls_insecure_skip_verify")])
        }
    }
    for (i, route) in configuration.routes.enumerated() {
        for (j, secret) in route.verify.secrets.enumerated() where secret.origin == .literal {
            log.warning("secret written in the configuration file; use env or file outside tests",
                        metadata: ["key": .string("routes[\(i)].verify.secrets[\(j)]")])
        }
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Validate a configuration file and list every problem.")

    @Option(help: "Path of the YAML configuration file.")
    var config: String

    func run() throws {
        _ = try loadOrExit(config)
        print("configuration is valid")
    }
}

struct Sign: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the headers a VECU sender would send for a body, to test delivery with curl.")

    @Option(name: .customLong("secret-env"), help: "Environment variable holding the secret.")
    var secretEnv: String

    @Option(help: "Unix seconds to sign with (default: now).")
    var timestamp: Int64?

    @Option(name: .customLong("body-file"), help: "File holding the exact body to send (- for standard input).")
    var bodyFile: String

    func run() throws {
        guard let secret = ProcessInfo.processInfo.environment[secretEnv], !secret.isEmpty else {
            printError("environment variable \(secretEnv) is not set")
            throw ExitCode(1)
        }
        let body: [UInt8]
        do {
            body = bodyFile == "-" ? [UInt8](FileHandle.standardInput.readDataToEndOfFile()) : try ConfigurationFile.readFile(bodyFile)
        } catch {
            printError("cannot read \(bodyFile): \(error)")
            throw ExitCode(1)
        }
        let ts = timestamp ?? Int64(Date().timeIntervalSince1970)
        print("X-VECU-Timestamp: \(ts)")
        print("X-VECU-Signature: \(VecuSignatureScheme.sign(secret: Array(secret.utf8), timestamp: ts, body: body))")
    }
}
