import Foundation
import HookgateCore

/// Loads a configuration file with the process's environment and file system as secret sources,
/// and checks what it names on disk (TLS certificates and keys) with OpenSSL.
public enum ConfigurationFile {
    public static func load(path: String) -> Result<Configuration, ConfigurationProblems> {
        loadRuntime(path: path).map(\.configuration)
    }

    static func loadRuntime(path: String) -> Result<RuntimeConfiguration, ConfigurationProblems> {
        guard let data = FileManager.default.contents(atPath: path) else {
            return .failure(ConfigurationProblems(problems: [.init(key: "", message: "cannot read configuration file \(path)")]))
        }
        guard let text = String(data: data, encoding: .utf8) else {
            return .failure(ConfigurationProblems(problems: [.init(key: "", message: "configuration file \(path) is not UTF-8")]))
        }
        return ConfigurationLoader.load(yaml: text, environment: processEnvironment).flatMap(RuntimeConfiguration.make)
    }

    public static var processEnvironment: SecretEnvironment {
        SecretEnvironment(variables: ProcessInfo.processInfo.environment) { path in
            guard let data = FileManager.default.contents(atPath: path) else {
                throw SystemError("cannot open", errno: ENOENT)
            }
            return [UInt8](data)
        }
    }
}
