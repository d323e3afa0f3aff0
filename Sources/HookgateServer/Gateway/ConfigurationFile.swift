#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import HookgateCore

/// Loads a configuration file with the process's environment and file system as secret sources,
/// and checks what it names on disk (TLS certificates and keys) with OpenSSL.
public enum ConfigurationFile {
    /// What `--config` takes to mean standard input.
    public static let standardInput = "-"

    public static func load(path: String) -> Result<Configuration, ConfigurationProblems> {
        loadRuntime(path: path).map(\.configuration)
    }

    static func loadRuntime(path: String) -> Result<RuntimeConfiguration, ConfigurationProblems> {
        let data: [UInt8]
        do {
            data = path == standardInput ? try readAll(fd: STDIN_FILENO) : try readFile(path)
        } catch {
            let source = path == standardInput ? "standard input" : "configuration file \(path)"
            return .failure(ConfigurationProblems(problems: [.init(key: "", message: "cannot read \(source): \(error)")]))
        }
        return ConfigurationLoader.load(bytes: data, environment: processEnvironment).flatMap(RuntimeConfiguration.make)
    }

    public static var processEnvironment: SecretEnvironment {
        SecretEnvironment(variables: ProcessInfo.processInfo.environment, readFile: { try readFile($0) },
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
        return try readAll(fd: fd)
    }

    private static func readAll(fd: Int32) throws -> [UInt8] {
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
