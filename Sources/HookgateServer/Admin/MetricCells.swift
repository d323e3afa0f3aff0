import Foundation
import Prometheus
import Synchronization

/// Request-path metric cells without locks (issue 14). Every thread that records a figure writes
/// only its own block of cells, with a relaxed load and store (the owner is the only writer, so no
/// read-modify-write and no cache line shared between workers); a scrape sums the blocks.
///
/// swift-prometheus takes a lock per histogram observation and an atomic read-modify-write per
/// counter or gauge change, shared by all workers. Here a series is a range of cell indices, the
/// same in every thread's block. A block is a table of segment addresses, each segment
/// `segmentCells` cells allocated (zeroed) by its owner on first use and published with a
/// release store, so a scrape sees a segment whole or not at all. Blocks are never freed: a thread
/// that ends leaves its counts behind, which a counter must keep (hookgate's threads live as long
/// as the process).
final class MetricCells: @unchecked Sendable {
    /// One process-wide cell space: every series gets its own indices, whichever gateway made it.
    static let shared = MetricCells()

    static let segmentShift = 12
    static let segmentCells = 1 << segmentShift
    static let segments = 64
    /// 262,144 cells; series beyond it fall back to the library's own (atomic) types.
    static let capacity = segments * segmentCells

    private let lock = NSLock()
    /// Guarded by `lock`: the next free cell, and every thread's segment table.
    private var next = 0
    private var tables: [UnsafeMutablePointer<Atomic<Int>>] = []
    private var key = pthread_key_t()

    private init() {
        precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
    }

    /// `count` consecutive cells for one series, or nil when the space is used up.
    func allocate(_ count: Int) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard next + count <= Self.capacity else { return nil }
        let first = next
        next += count
        return first
    }

    /// Adds `amount` to `cell` in the calling thread's block.
    @inline(__always)
    func add(_ cell: Int, _ amount: Int) {
        let slot = threadCell(cell)
        slot.pointee.store(slot.pointee.load(ordering: .relaxed) &+ amount, ordering: .relaxed)
    }

    /// The sum of `cell` over every thread's block.
    func sum(_ cell: Int) -> Int {
        lock.lock()
        defer { lock.unlock() }
        var total = 0
        for table in tables {
            let base = table[cell >> Self.segmentShift].load(ordering: .acquiring)
            guard base != 0, let cells = UnsafeMutablePointer<Atomic<Int>>(bitPattern: base) else { continue }
            total &+= cells[cell & (Self.segmentCells - 1)].load(ordering: .relaxed)
        }
        return total
    }

    @inline(__always)
    private func threadCell(_ cell: Int) -> UnsafeMutablePointer<Atomic<Int>> {
        let table = threadTable()
        let segment = cell >> Self.segmentShift
        var base = table[segment].load(ordering: .relaxed)
        if base == 0 {
            // Zeroed memory is the representation of an Atomic<Int> holding 0.
            let memory = calloc(Self.segmentCells, MemoryLayout<Atomic<Int>>.stride)!
            base = Int(bitPattern: memory)
            table[segment].store(base, ordering: .releasing)
        }
        return UnsafeMutablePointer<Atomic<Int>>(bitPattern: base)! + (cell & (Self.segmentCells - 1))
    }

    @inline(__always)
    private func threadTable() -> UnsafeMutablePointer<Atomic<Int>> {
        if let found = pthread_getspecific(key) { return found.assumingMemoryBound(to: Atomic<Int>.self) }
        let memory = calloc(Self.segments, MemoryLayout<Atomic<Int>>.stride)!
        let table = memory.assumingMemoryBound(to: Atomic<Int>.self)
        lock.lock()
        tables.append(table)
        lock.unlock()
        pthread_setspecific(key, memory)
        return table
    }
}

/// A counter in the cell space, exposed through a swift-prometheus `Counter`: a scrape adds what
/// the cells gained since the last scrape. If the cell space is used up it counts on the library's
/// counter directly.
final class CellCounter {
    let counter: Counter
    private let cell: Int?
    /// Folded into `counter` so far; touched only under the scrape lock.
    private var folded = 0

    init(_ counter: Counter) {
        self.counter = counter
        cell = MetricCells.shared.allocate(1)
    }

    @inline(__always)
    func increment() {
        if let cell { MetricCells.shared.add(cell, 1) } else { counter.increment() }
    }

    /// At scrape time, under the scrape lock.
    func fold() {
        guard let cell else { return }
        let total = MetricCells.shared.sum(cell)
        if total > folded { counter.increment(by: Int64(total - folded)) }
        folded = total
    }
}

/// A gauge in the cell space (changes from any thread), exposed through a swift-prometheus `Gauge`
/// set to the cells' sum at scrape time.
final class CellGauge {
    let gauge: Gauge
    private let cell: Int

    init(_ gauge: Gauge) {
        self.gauge = gauge
        guard let cell = MetricCells.shared.allocate(1) else { preconditionFailure("metric cell space used up") }
        self.cell = cell
    }

    @inline(__always)
    func add(_ change: Int) { MetricCells.shared.add(cell, change) }

    func fold() { gauge.set(Double(MetricCells.shared.sum(cell))) }
}

/// A latency histogram in the cell space: one cell per bucket (the first bound at or above the
/// value; one more for above every bound) and one for the sum in nanoseconds. swift-prometheus's
/// `Histogram` cannot be handed bucket totals, so this renders its own series, byte for byte in
/// the library's format (cumulative `_bucket` lines with `le` as `Duration.bucketRepresentation`,
/// then `_sum` and `_count`); `DurationHistogramFamily` writes the HELP and TYPE lines.
final class CellDurationHistogram {
    private let bounds: [Int64]
    private let boundLabels: [String]
    private let labels: [UInt8]
    private let first: Int

    init(labels: [(String, String)], buckets: [Duration]) {
        bounds = buckets.map { $0.nanoseconds }
        boundLabels = buckets.map(\.bucketRepresentation)
        self.labels = PrometheusText.labels(labels)
        guard let first = MetricCells.shared.allocate(buckets.count + 2) else { preconditionFailure("metric cell space used up") }
        self.first = first
    }

    @inline(__always)
    func recordNanoseconds(_ nanoseconds: Int64) {
        var bucket = 0
        while bucket < bounds.count && bounds[bucket] < nanoseconds { bucket += 1 }
        MetricCells.shared.add(first + bucket, 1)
        MetricCells.shared.add(first + bounds.count + 1, Int(nanoseconds))
    }

    func emit(name: String, into buffer: inout [UInt8]) {
        var cumulative = 0
        for bucket in 0...bounds.count {
            cumulative += MetricCells.shared.sum(first + bucket)
            buffer.append(contentsOf: name.utf8)
            buffer.append(contentsOf: "_bucket{".utf8)
            buffer.append(contentsOf: labels)
            buffer.append(contentsOf: ",le=\"".utf8)
            buffer.append(contentsOf: (bucket < bounds.count ? boundLabels[bucket] : "+Inf").utf8)
            buffer.append(contentsOf: "\"} \(cumulative)\n".utf8)
        }
        let sum = Duration.nanoseconds(Int64(MetricCells.shared.sum(first + bounds.count + 1)))
        buffer.append(contentsOf: "\(name)_sum{".utf8)
        buffer.append(contentsOf: labels)
        buffer.append(contentsOf: "} \(sum.bucketRepresentation)\n".utf8)
        buffer.append(contentsOf: "\(name)_count{".utf8)
        buffer.append(contentsOf: labels)
        buffer.append(contentsOf: "} \(cumulative)\n".utf8)
    }
}

/// One histogram family (HELP, TYPE, then its series), appended after the registry's exposition.
final class DurationHistogramFamily {
    let name: String
    private let help: String
    private let series = Locked<[CellDurationHistogram]>([])

    init(name: String, help: String) {
        self.name = name
        self.help = help
    }

    func make(labels: [(String, String)], buckets: [Duration]) -> CellDurationHistogram {
        let made = CellDurationHistogram(labels: labels, buckets: buckets)
        series.withLock { $0.append(made) }
        return made
    }

    func emit(into buffer: inout [UInt8]) {
        let all = series.withLock { $0 }
        guard !all.isEmpty else { return }
        buffer.append(contentsOf: "# HELP \(name) \(help)\n# TYPE \(name) histogram\n".utf8)
        for histogram in all { histogram.emit(name: name, into: &buffer) }
    }
}

/// The Prometheus text format's label rendering, as swift-prometheus does it.
enum PrometheusText {
    static func labels(_ labels: [(String, String)]) -> [UInt8] {
        var out: [UInt8] = []
        for (i, (key, value)) in labels.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: key.utf8)
            out.append(contentsOf: "=\"".utf8)
            for byte in value.utf8 {
                switch byte {
                case UInt8(ascii: "\\"): out.append(contentsOf: "\\\\".utf8)
                case UInt8(ascii: "\""): out.append(contentsOf: "\\\"".utf8)
                case UInt8(ascii: "\n"): out.append(contentsOf: "\\n".utf8)
                default: out.append(byte)
                }
            }
            out.append(UInt8(ascii: "\""))
        }
        return out
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
