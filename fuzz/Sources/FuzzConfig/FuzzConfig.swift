// libFuzzer target: the configuration loader (ConfigurationLoader.load: YAML through Yams, then
// every key's validation) with an in-memory SecretEnvironment. A configuration it accepts must
// satisfy the documented limits. Built by fuzz/run.
import HookgateCore

private let environment = SecretEnvironment(
    variables: ["VECU_WEBHOOK_SECRET": "fuzz-secret-0123456789abcdef0123456789abcdef", "SHORT": "short"],
    readFile: { path in
        switch path {
        case "/run/secrets/vecu": return Array("file-secret-0123456789abcdef0123456789abcdef\n".utf8)
        case "/run/secrets/short": return Array("short\n".utf8)
        case "/etc/tls/cert.pem", "/etc/tls/key.pem": return Array("-----BEGIN X-----\n".utf8)
        default: throw FuzzFileError.notFound(path)
        }
    })

enum FuzzFileError: Error { case notFound(String) }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    let yaml = String(decoding: bytes, as: UTF8.self)
    switch ConfigurationLoader.load(yaml: yaml, environment: environment) {
    case .success(let config):
        precondition(!config.routes.isEmpty, "a configuration without routes was accepted")
        precondition(Set(config.routes.map(\.path)).count == config.routes.count, "duplicate paths accepted")
        precondition(Set(config.routes.map(\.name)).count == config.routes.count, "duplicate names accepted")
        for route in config.routes {
            precondition(!route.verify.secrets.isEmpty)
            for secret in route.verify.secrets {
                precondition(secret.bytes.count >= ConfigurationLoader.minimumSecretBytes, "a short secret was accepted")
            }
            precondition(route.upstream.timeout.milliseconds < ConfigurationLoader.senderDeadline.milliseconds,
                         "an upstream timeout of 30 s or more was accepted")
            precondition(route.dedup.capacity > 0)
        }
    case .failure(let problems):
        precondition(!problems.problems.isEmpty, "a refusal without a problem")
    }
    return 0
}
