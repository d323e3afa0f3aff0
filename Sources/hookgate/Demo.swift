import ArgumentParser
import Foundation
import HookgateCore
import HookgateServer
import Logging

/// `hookgate demo`: the whole gateway on a fresh machine, nothing to set up.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start the gateway with a built-in echo upstream and show a signed, a tampered and a duplicate event.")

    @Option(help: "Configuration to start from (listen and upstream are replaced by local ones). Default: conf/hookgate.yaml if present, else a built-in one.")
    var config: String?

    static let builtInConfiguration = """
    routes:
      - name: vecu
        path: /webhooks/vecu
        verify:
          scheme: vecu
          secrets:
            - env: VECU_WEBHOOK_SECRET
        upstream:
          url: http://127.0.0.1:3000/webhooks/vecu
    """

    @Flag(help: "Also print the gateway's JSON log lines.")
    var verbose = false

    func run() throws {
        LoggingSystem.bootstrap { label in
            var handler = JSONLogHandler(label: label)
            handler.logLevel = verbose ? .info : .critical
            return handler
        }
        if ProcessInfo.processInfo.environment["VECU_WEBHOOK_SECRET"] == nil {
            setenv("VECU_WEBHOOK_SECRET", "demo-secret-0123456789abcdef0123456789abcdef", 1)
        }
        let secret = ProcessInfo.processInfo.environment["VECU_WEBHOOK_SECRET"]!
        var configuration: Configuration
        if let config {
            configuration = try loadOrExit(config)
        } else if FileManager.default.fileExists(atPath: "conf/hookgate.yaml") {
            configuration = try loadOrExit("conf/hookgate.yaml")
        } else {
            switch ConfigurationLoader.load(yaml: Self.builtInConfiguration, environment: ConfigurationFile.processEnvironment) {
            case .success(let c): configuration = c
            case .failure(let problems):
                printError(problems.description)
                throw ExitCode(1)
            }
        }
        configuration.adminListen = nil
        let echo = try EchoUpstream()
        configuration.listen = ListenAddress(host: "127.0.0.1", port: 0)
        configuration.workers = .fixed(1)
        for i in configuration.routes.indices {
            configuration.routes[i].upstream.url = UpstreamURL(parsing: "http://127.0.0.1:\(echo.port)/echo")!
        }
        let route = configuration.routes[0]
        let gateway = try Gateway(configuration: configuration, accessLog: verbose)
        try gateway.start()
        print("hookgate demo: gateway on 127.0.0.1:\(gateway.port)\(route.path), echo upstream on 127.0.0.1:\(echo.port)")
        print("")

        let id = "demo-\(UInt32.random(in: 0...UInt32.max))"
        let body = Array("""
        {"id":"\(id)","source":"vecu.custody-service","type":"custody.vehicle.released","specversion":"1.0",\
        "time":"2025-01-15T14:30:00Z","datacontenttype":"application/json","data":{"vin":"5XXXX00000XEXMPL0"}}
        """.utf8)
        let now = Int64(Date().timeIntervalSince1970)
        let signature = VecuSignatureScheme.sign(secret: Array(secret.utf8), timestamp: now, body: body)
        let headers = [("X-VECU-Event-ID", id), ("X-VECU-Event-Type", "custody.vehicle.released"),
                       ("X-VECU-Timestamp", String(now)), ("X-VECU-Retry-Count", "0"), ("X-VECU-Signature", signature)]
        var tampered = body
        tampered[tampered.count - 4] = UInt8(ascii: "1")

        let steps: [(String, [UInt8], String)] = [
            ("1. signed event", body, "forwarded to the upstream, its answer relayed"),
            ("2. same headers, body tampered with", tampered, "rejected: the signature does not match"),
            ("3. the first event again (a retry)", body, "dropped as a duplicate, upstream not called"),
        ]
        var failures = 0
        for (title, payload, expectation) in steps {
            let before = echo.receivedEventIDs.count
            let answer = try DemoClient.post(port: gateway.port, path: route.path, headers: headers, body: payload)
            let reached = echo.receivedEventIDs.count - before
            print("\(title) -> HTTP \(answer.status) \(answer.body)")
            print("   upstream received \(reached) request(s); expected: \(expectation)")
            let ok: Bool
            switch title.first {
            case "1": ok = answer.status == 200 && reached == 1
            case "2": ok = answer.status == 401 && reached == 0
            default: ok = answer.status == 200 && answer.body.contains("duplicate") && reached == 0
            }
            if !ok { failures += 1; print("   UNEXPECTED") }
        }
        gateway.shutdown(immediately: true)
        gateway.wait()
        echo.stop()
        print("")
        print(failures == 0 ? "demo finished: all three behaved as expected" : "demo finished with \(failures) unexpected result(s)")
        if failures > 0 { throw ExitCode(1) }
    }
}
