/// hookgate's version: the one place it is written. `hookgate --version`, the start-up log line,
/// the `hookgate_build_info` metric and the container image's label (docker/smoke-test reads
/// this line for the Dockerfile's build argument) all take it from here.
public enum HookgateVersion {
    public static let current = "0.9.0"
}
