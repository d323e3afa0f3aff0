import Foundation
import HookgateCore

/// Loads a configuration file with the process's environment and file system as secret sources,
/// and checks what it names on disk (TLS certificates and keys) with OpenSSL.
public enum ConfigurationFile {
    public static func load(path: String) -> Result<Configuration, ConfigurationProblems> {
        loadRuntime(path: path).map(\.configuration)
    }

    static func loadRuntime(path: String) -> Result<RuntimeConfiguration, ConfigurationProblems> {
        let data: [UInt8]
        do {
            data = try readFile(path)
        } catch {
            return .failure(ConfigurationProblems(problems: [.init(key: "", message: "cannot read configuration file \(path): \(error)")]))
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            return .failure(ConfigurationProblems(problems: [.init(key: "", message: "configuration file \(path) is not UTF-8")]))
        }
        return ConfigurationLoader.load(yaml: text, environment: processEnvironment).flatMap(RuntimeConfiguration.make)
    }

    public static var processEnvironment: SecretEnvironment {
        SecretEnvironment(variables: ProcessInfo.processInfo.environment, readFile: readFile,
                          isWritableDirectory: { path in
                              var status = stat()
                              return stat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR && access(path, W_OK | X_OK) == 0
                          })
    }

    /// A whole file, or an error that says why not (permission, missing, a directory...).
    public static func readFile(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError("cannot open") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n == 0 { return bytes }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError("cannot read")
            }
            bytes += chunk[0..<n]
            guard bytes.count <= 16 << 20 else { throw SystemError("file larger than 16 MiB", errno: 0) }
        }
    }
}
