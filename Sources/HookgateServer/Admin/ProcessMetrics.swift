#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import Prometheus

/// The standard `process_*` series (as the Prometheus client libraries name them), read from
/// /proc at scrape time: CPU seconds, resident memory, open and maximum descriptors, start time.
final class ProcessMetrics {
    private let cpuSeconds: Counter
    private let residentMemory: Gauge
    private let openFDs: Gauge
    private let maxFDs: Gauge
    private var cpuSecondsSeen = 0.0
    private let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
    private let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))

    init(registry: PrometheusCollectorRegistry) {
        cpuSeconds = registry.makeCounter(descriptor: .named("process_cpu_seconds_total", "Total user and system CPU time spent in seconds."))
        residentMemory = registry.makeGauge(descriptor: .named("process_resident_memory_bytes", "Resident memory size in bytes."))
        openFDs = registry.makeGauge(descriptor: .named("process_open_fds", "Number of open file descriptors."))
        maxFDs = registry.makeGauge(descriptor: .named("process_max_fds", "Maximum number of open file descriptors."))
        let startTime = registry.makeGauge(descriptor: .named(
            "process_start_time_seconds", "Start time of the process since unix epoch in seconds."))
        if let stat = Self.statFields(), stat.count > 19, let started = Double(stat[19]), let boot = Self.bootTime() {
            startTime.set(boot + started / ticksPerSecond)
        }
    }

    func update() {
        if let stat = Self.statFields(), stat.count > 12, let user = Double(stat[11]), let system = Double(stat[12]) {
            let total = (user + system) / ticksPerSecond
            if total > cpuSecondsSeen { cpuSeconds.increment(by: total - cpuSecondsSeen) }
            cpuSecondsSeen = max(cpuSecondsSeen, total)
        }
        if let statm = Self.text("/proc/self/statm")?.split(separator: " "), statm.count > 1, let pages = Double(statm[1]) {
            residentMemory.set(pages * pageSize)
        }
        if let count = Self.openDescriptorCount() { openFDs.set(Double(count)) }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 { maxFDs.set(Double(limit.rlim_cur)) }
    }

    /// /proc/self/stat's fields after the command name (which may hold spaces): index 0 is
    /// field 3 (state), so utime is 11, stime 12, starttime 19.
    private static func statFields() -> [Substring]? {
        guard let text = text("/proc/self/stat"), let close = text.lastIndex(of: ")") else { return nil }
        return text[text.index(after: close)...].split(separator: " ")
    }

    private static func bootTime() -> Double? {
        guard let text = text("/proc/stat") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst(6))
        }
        return nil
    }

    private static func openDescriptorCount() -> Int? {
        guard let dir = opendir("/proc/self/fd") else { return nil }
        defer { closedir(dir) }
        var count = 0
        while let entry = readdir(dir) {
            let isDot = withUnsafeBytes(of: entry.pointee.d_name) { $0.first == UInt8(ascii: ".") }
            if !isDot { count += 1 }
        }
        return count - 1  // the descriptor opendir holds
    }

    private static func text(_ path: String) -> String? {
        guard let bytes = try? ConfigurationFile.readFile(path) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }
}
