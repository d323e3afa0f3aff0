import CLibevent
import Foundation
import Logging

/// Reloads the configuration when a file it is made of changes (the file itself, `file:` secrets,
/// the listener's certificate and key), as SIGHUP does. Kubernetes updates a mounted Secret by
/// swapping a `..data` symlink in its directory, never by writing the file a path names, so the
/// directories are watched (inotify), not the files. Changes are debounced: a burst of events
/// (a write, a rename, a chmod) makes one reload, once it has been quiet for a moment; and files
/// whose bytes are what the last reload read make none (a SIGHUP sent with the change already
/// applied it, or the event was a touch).
///
/// Runs on the first worker's loop. Ownership: the events get this watcher unretained; the gateway
/// holds it until its loops have ended, and `deinit` frees the events and the descriptor.
final class ConfigurationWatcher {
    private unowned let gateway: Gateway
    private let base: OpaquePointer
    private var descriptor: Int32 = -1
    private var readEvent: OpaquePointer?
    private var debounce: OpaquePointer!
    /// The names that matter in each watched directory, by watch descriptor.
    private var names: [Int32: Set<String>] = [:]
    private var paths: [String] = []
    /// The watched files' bytes (nil: unreadable) when the watch was armed, just after a reload.
    private var snapshot: [[UInt8]?] = []
    private let log = Logger(label: "hookgate")

    static let debounceMilliseconds: Int64 = 200
    private static let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ATTRIB)

    init(gateway: Gateway, base: OpaquePointer) {
        self.gateway = gateway
        self.base = base
        debounce = event_new(base, -1, 0, { _, _, arg in
            Unmanaged<ConfigurationWatcher>.fromOpaque(arg!).takeUnretainedValue().quiet()
        }, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        disarm()
        event_free(debounce)
    }

    /// Watches the directories of `paths` from now on (the set of files changes with reloads).
    func arm(paths: [String]) {
        disarm()
        self.paths = paths
        snapshot = Self.contents(of: paths)
        descriptor = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard descriptor >= 0 else {
            log.warning("cannot watch configuration files; reload with SIGHUP", metadata: ["error": .string(SystemError("inotify_init1").description)])
            return
        }
        var byDirectory: [String: Set<String>] = [:]
        for path in paths {
            let (directory, name) = Self.split(path)
            // `..data` is the symlink Kubernetes swaps when a mounted Secret changes.
            byDirectory[directory, default: ["..data"]].insert(name)
        }
        for (directory, wanted) in byDirectory.sorted(by: { $0.key < $1.key }) {
            let watch = inotify_add_watch(descriptor, directory, Self.mask)
            if watch < 0 {
                log.warning("cannot watch a configuration directory; changes there need SIGHUP",
                            metadata: ["directory": .string(directory), "error": .string(SystemError("inotify_add_watch").description)])
                continue
            }
            names[watch, default: []].formUnion(wanted)
        }
        readEvent = event_new(base, descriptor, Int16(EV_READ | EV_PERSIST), { _, _, arg in
            Unmanaged<ConfigurationWatcher>.fromOpaque(arg!).takeUnretainedValue().readable()
        }, Unmanaged.passUnretained(self).toOpaque())
        event_add(readEvent, nil)
    }

    private func disarm() {
        if let readEvent { event_free(readEvent) }
        readEvent = nil
        if descriptor >= 0 { close(descriptor) }
        descriptor = -1
        names.removeAll()
    }

    private func readable() {
        var relevant = false
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            buffer.withUnsafeBytes { raw in
                var offset = 0
                // struct inotify_event: wd, mask, cookie, len (4 bytes each), then len bytes of name.
                while offset + 16 <= count {
                    let watch = raw.loadUnaligned(fromByteOffset: offset, as: Int32.self)
                    let mask = raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)
                    let length = Int(raw.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self))
                    let nameBytes = raw[(offset + 16)..<min(count, offset + 16 + length)].prefix { $0 != 0 }
                    let name = String(decoding: nameBytes, as: UTF8.self)
                    // A lost queue (overflow) or a removed directory: reload to be safe.
                    if mask & UInt32(IN_Q_OVERFLOW | IN_IGNORED) != 0 || names[watch]?.contains(name) == true { relevant = true }
                    offset += 16 + length
                }
            }
        }
        guard relevant else { return }
        var quiet = timeval(milliseconds: Self.debounceMilliseconds)
        event_add(debounce, &quiet)  // re-adding restarts the wait: one reload per burst
    }

    private func quiet() {
        guard Self.contents(of: paths) != snapshot else { return }
        gateway.reload(trigger: .fileChange)
    }

    private static func contents(of paths: [String]) -> [[UInt8]?] {
        paths.map { try? ConfigurationFile.readFile($0) }
    }

    private static func split(_ path: String) -> (directory: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let directory = String(path[..<slash])
        return (directory.isEmpty ? "/" : directory, String(path[path.index(after: slash)...]))
    }
}
