import CLibevent

/// Lets any thread run a closure on a worker's event loop: closures are queued under a lock and a
/// libevent user event wakes the loop (`event_active` is thread-safe once evthread is set up).
final class Mailbox {
    private let queue = Locked<[() -> Void]>([])
    private var wakeup: OpaquePointer!

    /// Ownership: the event's argument is this mailbox, unretained; the worker that owns the
    /// mailbox outlives its event base's loop.
    init(base: OpaquePointer) {
        wakeup = event_new(base, -1, 0, { _, _, arg in
            Unmanaged<Mailbox>.fromOpaque(arg!).takeUnretainedValue().drain()
        }, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit { event_free(wakeup) }

    func post(_ work: @escaping () -> Void) {
        let first = queue.withLock { q -> Bool in
            q.append(work)
            return q.count == 1
        }
        if first { event_active(wakeup, EV_READ, 0) }
    }

    private func drain() {
        let work = queue.withLock { q -> [() -> Void] in
            defer { q.removeAll(keepingCapacity: true) }
            return q
        }
        for item in work { item() }
    }
}
