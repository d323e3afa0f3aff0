import Foundation
import Glibc
import HookgateCore
import Logging

/// What became of a request to hold an event in the spool.
enum SpoolWriteResult: Sendable {
    /// On disk (committed with fsync); `new` is false when the same event was already held.
    case held(id: Int64, new: Bool)
    /// `spool.max_events` rows are held already.
    case full
    /// The write failed (disk full, read-only, I/O error): nothing is held.
    case failed(String)
}

/// The running spool (issue 11): the file, touched only by one dedicated thread so that no event
/// loop ever waits for the disk, and the queue of work for it. Workers hand it an event to hold
/// and hear back on their own loop (`Mailbox`) once the row is committed and synced; the
/// redeliverer asks it for due events and tells it the outcomes. Writes that arrive together are
/// committed together (one fsync for all), outcomes in one transaction, new events in another,
/// so that a failing insert never takes an outcome with it.
final class Spool: @unchecked Sendable {
    let configuration: SpoolConfiguration
    let metrics = SpoolMetrics()
    private let log = Logger(label: "hookgate")
    /// Held open (with its `flock`) until the process exits: a second gateway on the same file
    /// would redeliver the same events.
    private let lockDescriptor: Int32

    private enum Work {
        case hold(SpooledEvent, Worker, (SpoolWriteResult) -> Void)
        case outcome((SpoolFile) throws -> Void)
        case read((SpoolFile) -> Void)
    }

    // Under `condition`, shared with the spool thread.
    private let condition = NSCondition()
    private var queue: [Work] = []
    private var stopping = false
    private var running = false

    // The spool thread's own.
    private let file: SpoolFile
    private var rows = 0
    private var lastCount: Int64 = 0

    /// How often the row count and the statistics (metrics) are read again from the file (the
    /// CLI may have purged or retried events meanwhile): not after every change, since each read
    /// scans the table.
    static let refreshMilliseconds: Int64 = 500

    /// Opens (or creates) the file, takes its lock, hands `held` every event it holds (before the
    /// thread starts) and starts the spool thread. A file in use by another gateway, or that is not
    /// a hookgate spool, is refused.
    init(_ configuration: SpoolConfiguration, held: (String, EventKey) -> Void) throws {
        self.configuration = configuration
        let path = configuration.path
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SpoolError("spool.path: cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            Glibc.close(fd)
            throw SpoolError("spool.path: \(path) is in use by another process (another hookgate?); one gateway per spool file")
        }
        lockDescriptor = fd
        do {
            file = try SpoolFile(path: path, create: true)
            rows = try file.count()
            heldAtStart = try file.forEachKey(held)
        } catch {
            Glibc.close(fd)
            throw SpoolError("spool.path: \(error)")
        }
        refreshStatistics(now: WallClock.milliseconds())
        running = true
        let thread = Thread { [self] in run() }
        thread.name = "hg-spool"
        thread.start()
    }

    deinit { Glibc.close(lockDescriptor) }

    /// How many events the file held at start.
    let heldAtStart: Int

    /// Holds `event`; `done` runs on `worker`'s loop once it is on disk, or refused.
    func hold(_ event: SpooledEvent, worker: Worker, done: @escaping (SpoolWriteResult) -> Void) {
        enqueue(.hold(event, worker, done))
    }

    /// Records a redelivery's outcome (no answer: a lost outcome means one more redelivery).
    func record(_ change: @escaping (SpoolFile) throws -> Void) {
        enqueue(.outcome(change))
    }

    /// Reads on the spool thread; `body` hands its result to a loop itself.
    func read(_ body: @escaping (SpoolFile) -> Void) {
        enqueue(.read(body))
    }

    private func enqueue(_ work: Work) {
        condition.lock()
        queue.append(work)
        condition.signal()
        condition.unlock()
    }

    /// Shutdown: everything queued is written, then the thread ends. Blocks until it has.
    func close() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while running { condition.wait() }
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while queue.isEmpty && !stopping { condition.wait(until: Date(timeIntervalSinceNow: 1)) }
            let batch = queue
            queue.removeAll(keepingCapacity: true)
            let done = stopping && batch.isEmpty
            condition.unlock()
            if done { break }
            process(batch)
        }
        condition.lock()
        running = false
        condition.broadcast()
        condition.unlock()
    }

    private func process(_ batch: [Work]) {
        let now = WallClock.milliseconds()
        if now - lastCount >= Self.refreshMilliseconds {
            if let count = try? file.count() { rows = count }
            refreshStatistics(now: now)
            lastCount = now
        }
        var outcomes: [(SpoolFile) throws -> Void] = []
        var holds: [(SpooledEvent, Worker, (SpoolWriteResult) -> Void)] = []
        var reads: [(SpoolFile) -> Void] = []
        for work in batch {
            switch work {
            case .hold(let e, let w, let d): holds.append((e, w, d))
            case .outcome(let change): outcomes.append(change)
            case .read(let body): reads.append(body)
            }
        }
        if !outcomes.isEmpty {
            do {
                try file.transaction { for change in outcomes { try change(file) } }
            } catch {
                log.error("spool: recording redelivery outcomes failed", metadata: [
                    "error": .string("\(error)"), "count": .stringConvertible(outcomes.count),
                ])
            }
        }
        if !holds.isEmpty { hold(holds) }
        for body in reads { body(file) }
    }

    /// One transaction for every event to hold in this batch: committed (fsync) before any
    /// worker hears `.held`.
    private func hold(_ holds: [(SpooledEvent, Worker, (SpoolWriteResult) -> Void)]) {
        var results: [SpoolWriteResult] = []
        var admitted = 0
        do {
            try file.transaction {
                results = []
                admitted = 0
                for (event, _, _) in holds {
                    if rows + admitted >= configuration.maxEvents {
                        results.append(.full)
                        continue
                    }
                    if try file.insert(event) {
                        admitted += 1
                        results.append(.held(id: file.lastInsertID, new: true))
                    } else {
                        results.append(.held(id: 0, new: false))
                    }
                }
            }
            rows += admitted
        } catch {
            let message = "\(error)"
            results = holds.map { _ in .failed(message) }
        }
        for ((_, worker, done), result) in zip(holds, results) {
            switch result {
            case .full: metrics.writeFailed(full: true)
            case .failed: metrics.writeFailed(full: false)
            case .held: break
            }
            worker.mailbox.post { done(result) }
        }
    }

    private func refreshStatistics(now: Int64) {
        guard let stats = try? file.statistics() else { return }
        metrics.update(pending: stats.pending, dead: stats.dead,
                       oldestPendingAgeSeconds: stats.oldestPending.map { Double(max(0, now - $0)) / 1000 } ?? 0)
    }

    /// After an outcome changed the counts (a removal frees a row).
    func removed(_ count: Int) {
        record { [self] _ in rows = max(0, rows - count) }
    }
}
