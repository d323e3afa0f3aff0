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
        version: Version.text,
        subcommands: [Serve.self, Check.self, Sign.self, Demo.self, Version.self, Subscribe.self, Subscriptions.self, Unsubscribe.self, SpoolCommand.self]
    )
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// `--config PATH` (`-` for standard input), else `HOOKGATE_CONFIG`.
struct ConfigurationOption: ParsableArguments {
    @Option(help: "Path of the YAML configuration file, - for standard input (default: $HOOKGATE_CONFIG).")
    var config: String?

    func path() throws -> String {
        if let config { return config }
        if let named = ProcessInfo.processInfo.environment["HOOKGATE_CONFIG"], !named.isEmpty { return named }
        printError("no configuration: pass --config PATH (- for standard input) or set HOOKGATE_CONFIG")
        throw ExitCode(2)
    }
}

extension Logger.Level {
    init(_ level: LogLevel) {
        switch level {
        case .debug: self = .debug
        case .info: self = .info
        case .warn: self = .warning
        case .error: self = .error
        }
    }
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway (SIGTERM or Ctrl-C drains and stops it).")

    @OptionGroup var options: ConfigurationOption

    func run() throws {
        let path = try options.path()
        // A SIGHUP that arrives before the reload handler is installed must not end the process.
        signal(SIGHUP, SIG_IGN)
        let loaded = ConfigurationFile.load(path: path)
        let level = Logger.Level((try? loaded.get())?.logLevel ?? .info)
        LoggingSystem.bootstrap { label in
            var handler = JSONLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
        let log = Logger(label: "hookgate")
        let configuration: Configuration
        switch loaded {
        case .success(let c): configuration = c
        case .failure(let problems):
            for problem in problems.problems {
                log.error("invalid configuration", metadata: ["key": .string(problem.key), "problem": .string(problem.message)])
            }
            throw ExitCode(1)
        }
        for warning in ConfigurationWarning.all(for: configuration) {
            log.warning("\(warning.message)", metadata: ["key": .string(warning.key)])
        }
        do {
            let gateway = try Gateway(configuration: configuration, configurationPath: path)
            try gateway.start()
            gateway.handleSignals()
            gateway.wait()
        } catch {
            log.error("cannot start", metadata: ["error": .string("\(error)")])
            throw ExitCode(1)
        }
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate a configuration file: list every problem, and the warnings serve would log.")

    @OptionGroup var options: ConfigurationOption

    func run() throws {
        switch ConfigurationFile.load(path: try options.path()) {
        case .success(let configuration):
            for warning in ConfigurationWarning.all(for: configuration) {
                printError("warning: \(warning.key): \(warning.message)")
            }
            do {
                try checkLedgerStore(configuration)
                try checkSpool(configuration)
            } catch {
                printError("\(error)")
                throw ExitCode(1)
            }
            print("configuration is valid")
        case .failure(let problems):
            for problem in problems.problems { printError(problem.description) }
            throw ExitCode(1)
        }
    }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the version (as --version does).")
    static let text = "hookgate \(HookgateVersion.current)"

    func run() { print(Self.text) }
}

/// `hookgate demo`: the gateway in front of a built-in echo upstream (HookgateServer's GatewayDemo).
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start the gateway with a built-in echo upstream and show a signed, a tampered and a duplicate event.")

    @Option(help: "Configuration to start from (listen and upstream are replaced by local ones). Default: conf/hookgate.yaml if present, else a built-in one.")
    var config: String?

    @Flag(help: "Also print the gateway's JSON log lines.")
    var verbose = false

    func run() throws {
        LoggingSystem.bootstrap { label in
            var handler = JSONLogHandler(label: label)
            handler.logLevel = verbose ? .info : .critical
            return handler
        }
        let status = GatewayDemo.run(configPath: config, accessLog: verbose)
        if status != 0 { throw ExitCode(status) }
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
