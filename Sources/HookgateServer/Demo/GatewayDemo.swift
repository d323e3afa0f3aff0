import Foundation
import HookgateCore

/// `hookgate demo`: the whole gateway on a fresh machine, nothing to set up. Starts the gateway
/// in front of an `EchoUpstream` and sends a signed, a tampered and a duplicate event with
/// `DemoClient`, printing what happened to each.
public enum GatewayDemo {
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

    /// Runs the demo and returns the process's exit status (0: all three behaved as expected).
    /// `configPath` is a configuration to start from (listen and upstream are replaced by local
    /// ones); without it, conf/hookgate.yaml if present, else a built-in one.
    public static func run(configPath: String?, accessLog: Bool) -> Int32 {
        if ProcessInfo.processInfo.environment["VECU_WEBHOOK_SECRET"] == nil {
            setenv("VECU_WEBHOOK_SECRET", "demo-secret-0123456789abcdef0123456789abcdef", 1)
        }
        let secret = ProcessInfo.processInfo.environment["VECU_WEBHOOK_SECRET"]!
        let path = configPath ?? (FileManager.default.fileExists(atPath: "conf/hookgate.yaml") ? "conf/hookgate.yaml" : nil)
        let loaded = path.map(ConfigurationFile.load(path:))
            ?? ConfigurationLoader.load(yaml: builtInConfiguration, environment: ConfigurationFile.processEnvironment)
        var configuration: Configuration
        switch loaded {
        case .success(let c): configuration = c
        case .failure(let problems):
            printError(problems.description)
            return 1
        }
        do {
            return try run(configuration: &configuration, secret: secret, accessLog: accessLog) == 0 ? 0 : 1
        } catch {
            printError("demo failed: \(error)")
            return 1
        }
    }

    /// The three steps; returns how many did not behave as expected.
    private static func run(configuration: inout Configuration, secret: String, accessLog: Bool) throws -> Int {
        configuration.adminListen = nil
        let echo = try EchoUpstream()
        configuration.listen = ListenAddress(host: "127.0.0.1", port: 0)
        configuration.workers = .fixed(1)
        for i in configuration.routes.indices {
            for j in configuration.routes[i].destinations.indices {
                configuration.routes[i].destinations[j].upstream.url = UpstreamURL(parsing: "http://127.0.0.1:\(echo.port)/echo")!
            }
        }
        let route = configuration.routes[0]
        let gateway = try Gateway(configuration: configuration, accessLog: accessLog)
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
        return failures
    }

    private static func printError(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
