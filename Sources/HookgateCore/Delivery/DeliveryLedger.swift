/// The record of which events a route has delivered (the upstream answered 2xx) and which are
/// being forwarded right now. Delivered ids are kept in an LRU bounded by `capacity` and
/// forgotten `ttl` after they were delivered or last seen again as a duplicate; in-flight ids
/// are never evicted, so a second copy cannot be forwarded
/// while the first is still on its way. Not thread-safe: the server holds it under one lock.
/// Time is passed in (milliseconds on a monotonic clock), never read here.
public final class DeliveryLedger<Waiter> {
    /// What to do with an arriving event.
    public enum Claim: Equatable {
        /// New: forward it. The id is now in flight until `finish` is called.
        case forward
        /// Delivered before and still remembered: answer 200 without forwarding.
        case delivered
        /// Another copy is being forwarded right now.
        case inFlight
    }

    /// Most copies that may wait on one in-flight event; more are answered 503 at once.
    public static var maximumWaiters: Int { 64 }

    private var state: LedgerState<Waiter>

    public var capacity: Int { state.capacity }
    public var ttlMilliseconds: Int64 { state.ttlMilliseconds }
    /// Delivered ids dropped to stay within `capacity` (not counting TTL expiry).
    public var evictions: Int { state.evictions }
    /// Delivered ids currently remembered.
    public var count: Int { state.entries }
    /// Ids being forwarded right now.
    public var inFlightCount: Int { state.inFlight.count }
    /// Whether the index is between two tables (for tests of the growth path).
    var indexIsGrowing: Bool { state.indexIsGrowing }

    // Every operation is one access to `state`: its arrays are fields of one struct, changed in
    // place by its mutating methods, so the class's dynamic exclusivity check runs once per call
    // instead of once per array touched (dozens per request).
    public init(capacity: Int, ttlMilliseconds: Int64) {
        precondition(capacity > 0)
        state = LedgerState(capacity: capacity, ttlMilliseconds: ttlMilliseconds)
    }

    public func claim(_ key: EventKey, now: Int64) -> Claim { state.claim(key, now: now) }

    /// Adds a copy to wait for the in-flight one's outcome. False when the event is not in flight
    /// or already has `maximumWaiters` waiting.
    public func wait(_ key: EventKey, _ waiter: Waiter) -> Bool { state.wait(key, waiter) }

    /// Ends the forward of `key`. With `delivered` the id is remembered, otherwise it is released so
    /// that the sender's retry is forwarded again. Returns the copies that waited on it.
    @discardableResult
    public func finish(_ key: EventKey, delivered: Bool, now: Int64) -> [Waiter] {
        state.finish(key, delivered: delivered, now: now)
    }

    /// Remembers `key` as delivered until `expiresAt` (start-up: ids loaded from a durable store).
    /// It becomes the most recently used entry, so callers load the oldest first; an expiry past
    /// one ttl from `now` is cut to it (the ttl may have been shortened since), and an id already
    /// expired is ignored. Beyond `capacity` the least recently used entries make room, as for
    /// ids delivered in this process, but that is not counted in `evictions`: loading more than
    /// fits is not a sign that the capacity is too small for the traffic.
    public func restore(_ key: EventKey, expiresAt: Int64, now: Int64) {
        state.restore(key, expiresAt: expiresAt, now: now)
    }

    /// Applies new limits (configuration reload) and trims to the new capacity.
    public func reconfigure(capacity: Int, ttlMilliseconds: Int64) {
        precondition(capacity > 0)
        state.reconfigure(capacity: capacity, ttlMilliseconds: ttlMilliseconds)
    }
}

/// An in-flight id with the hash the ledger already computed over its bytes, so the dictionary
/// of forwards in flight does not hash the key again (equality still compares every byte).
struct InFlightKey: Hashable {
    var key: EventKey
    var hash: Int
    static func == (a: InFlightKey, b: InFlightKey) -> Bool { a.hash == b.hash && a.key == b.key }
    func hash(into hasher: inout Hasher) { hasher.combine(hash) }
}

/// The ledger's data and algorithms (see `DeliveryLedger`).
struct LedgerState<Waiter> {
    var capacity: Int
    var ttlMilliseconds: Int64
    var evictions = 0

    // Delivered ids, compactly: one slot per id in parallel arrays, the key's bytes in one arena,
    // an open-addressing index (linear probing, backward-shift deletion, grown incrementally) from
    // hash to slot, and an intrusive doubly linked LRU list through the slots. About 80 bytes per
    // id for typical CloudEvents ids, against several hundred for a dictionary of strings. Keys are
    // compared in full on every hit, so two distinct events can never be taken for one another.
    private var arena: [UInt8] = []
    private var arenaGarbage = 0
    private var keyOffsets: [Int] = []
    private var keyLengths: [UInt32] = []  // 0 marks a free slot (every key is at least 4 bytes)
    private var hashes: [Int] = []
    private var expiries: [Int64] = []
    private var previous: [Int32] = []
    private var next: [Int32] = []
    private var head: Int32 = -1  // most recently used
    private var tail: Int32 = -1  // least recently used
    private var free: [Int32] = []
    private var table: [Int32] = []
    private var tableMask = 0
    private var tableEntries = 0  // slots indexed in `table` (the rest are still in `oldTable`)
    // While the index grows, the smaller table it outgrew: its entries move into `table` a few per
    // insertion, so no single operation rehashes every id (a stall under the lock all workers share).
    private var oldTable: [Int32] = []
    private var oldTableMask = 0
    private var oldTableEntries = 0
    private var migrationCursor = 0
    var entries = 0
    private var scratch: [UInt8] = []
    var inFlight: [InFlightKey: [Waiter]] = [:]

    init(capacity: Int, ttlMilliseconds: Int64) {
        self.capacity = capacity
        self.ttlMilliseconds = ttlMilliseconds
        resizeTable(16)
    }

    mutating func claim(_ key: EventKey, now: Int64) -> DeliveryLedger<Waiter>.Claim {
        let hash = encode(key)
        if let slot = find(hash) {
            if expiries[Int(slot)] > now {
                // Seen again: the sender is still retrying it, so it is remembered for another
                // full ttl. Every entry's expiry is then its last use + ttl, so expiries grow
                // along the LRU list and expired entries are always found at the tail.
                expiries[Int(slot)] = now + ttlMilliseconds
                moveToFront(slot)
                return .delivered
            }
            remove(slot)
        }
        let flight = InFlightKey(key: key, hash: hash)
        if inFlight[flight] != nil { return .inFlight }
        inFlight[flight] = []
        return .forward
    }

    mutating func wait(_ key: EventKey, _ waiter: Waiter) -> Bool {
        let flight = InFlightKey(key: key, hash: encode(key))
        guard var waiters = inFlight[flight], waiters.count < DeliveryLedger<Waiter>.maximumWaiters else { return false }
        inFlight[flight] = nil  // keep the array uniquely referenced while appending
        waiters.append(waiter)
        inFlight[flight] = waiters
        return true
    }

    mutating func finish(_ key: EventKey, delivered: Bool, now: Int64) -> [Waiter] {
        let hash = encode(key)
        let waiters = inFlight.removeValue(forKey: InFlightKey(key: key, hash: hash)) ?? []
        if delivered { remember(encoded: hash, now: now) }
        return waiters
    }

    mutating func restore(_ key: EventKey, expiresAt: Int64, now: Int64) {
        let hash = encode(key)
        guard expiresAt > now, inFlight.isEmpty || inFlight[InFlightKey(key: key, hash: hash)] == nil else { return }
        let counted = evictions
        remember(encoded: hash, now: now)
        evictions = counted
        expiries[Int(head)] = min(expiresAt, now + ttlMilliseconds)
    }

    mutating func reconfigure(capacity: Int, ttlMilliseconds: Int64) {
        self.capacity = capacity
        self.ttlMilliseconds = ttlMilliseconds
        while entries > capacity { evictTail() }
    }

    /// Remembers the key last `encode`d (its bytes are in `scratch`), whose hash is `hash`.
    mutating func remember(encoded hash: Int, now: Int64) {
        if let slot = find(hash) {
            expiries[Int(slot)] = now + ttlMilliseconds
            moveToFront(slot)
            return
        }
        // Expired entries collect at the tail (see `claim`); drop them first.
        while tail >= 0, expiries[Int(tail)] <= now { remove(tail) }
        if entries >= capacity { evictTail() }
        let offset = arena.count
        arena.append(contentsOf: scratch)
        let slot: Int32
        if let reused = free.popLast() {
            slot = reused
            keyOffsets[Int(slot)] = offset
            keyLengths[Int(slot)] = UInt32(scratch.count)
            hashes[Int(slot)] = hash
            expiries[Int(slot)] = now + ttlMilliseconds
        } else {
            slot = Int32(keyOffsets.count)
            keyOffsets.append(offset)
            keyLengths.append(UInt32(scratch.count))
            hashes.append(hash)
            expiries.append(now + ttlMilliseconds)
            previous.append(-1)
            next.append(-1)
        }
        entries += 1
        if entries * 4 > table.count * 3 { resizeTable(table.count * 2) }
        insertIntoTable(slot)
        linkAtFront(slot)
    }

    /// Writes the key's bytes (source length, source, id) into `scratch` and returns their hash.
    mutating func encode(_ key: EventKey) -> Int {
        scratch.removeAll(keepingCapacity: true)
        let sourceLength = UInt32(key.source.utf8.count)
        withUnsafeBytes(of: sourceLength.littleEndian) { scratch.append(contentsOf: $0) }
        key.source.withUTF8Bytes { scratch.append(contentsOf: $0) }
        key.id.withUTF8Bytes { scratch.append(contentsOf: $0) }
        var hasher = Hasher()
        scratch.withUnsafeBytes { hasher.combine(bytes: $0) }
        return hasher.finalize()
    }

    func keyEquals(_ slot: Int32) -> Bool {
        let length = Int(keyLengths[Int(slot)])
        guard length == scratch.count else { return false }
        let offset = keyOffsets[Int(slot)]
        return arena.withUnsafeBytes { a in
            scratch.withUnsafeBytes { s in ByteCompare.equal(UnsafeRawBufferPointer(rebasing: a[offset..<(offset + length)]), s) }
        }
    }

    mutating func find(_ hash: Int) -> Int32? {
        if let slot = find(hash, in: table, mask: tableMask) { return slot }
        return oldTableEntries > 0 ? find(hash, in: oldTable, mask: oldTableMask) : nil
    }

    func find(_ hash: Int, in index: [Int32], mask: Int) -> Int32? {
        var i = hash & mask
        while true {
            let slot = index[i]
            if slot < 0 { return nil }
            if hashes[Int(slot)] == hash, keyEquals(slot) { return slot }
            i = (i + 1) & mask
        }
    }

    mutating func insertIntoTable(_ slot: Int32) {
        if oldTableEntries > 0 { migrate(4) }
        place(slot)
    }

    mutating func place(_ slot: Int32) {
        var i = hashes[Int(slot)] & tableMask
        while table[i] >= 0 { i = (i + 1) & tableMask }
        table[i] = slot
        tableEntries += 1
    }

    /// Removes `slot` from whichever table indexes it.
    mutating func removeFromTable(_ slot: Int32) {
        if oldTableEntries > 0, let i = position(of: slot, in: oldTable, mask: oldTableMask) {
            Self.removeFromIndex(at: i, in: &oldTable, mask: oldTableMask, hashes: hashes)
            oldTableEntries -= 1
            if oldTableEntries == 0 { oldTable = [] }
        } else if let i = position(of: slot, in: table, mask: tableMask) {
            Self.removeFromIndex(at: i, in: &table, mask: tableMask, hashes: hashes)
            tableEntries -= 1
        }
    }

    func position(of slot: Int32, in index: [Int32], mask: Int) -> Int? {
        var i = hashes[Int(slot)] & mask
        while true {
            let here = index[i]
            if here == slot { return i }
            if here < 0 { return nil }
            i = (i + 1) & mask
        }
    }

    /// Empties `position` by backward-shift deletion (no tombstones): the index stays a valid
    /// linear-probing table after every removal, which is also what lets `migrate` move entries
    /// out of the old table one at a time.
    static func removeFromIndex(at position: Int, in index: inout [Int32], mask: Int, hashes: [Int]) {
        var i = position
        var j = i
        while true {
            j = (j + 1) & mask
            let moving = index[j]
            if moving < 0 { break }
            let home = hashes[Int(moving)] & mask
            // `moving` may fill the hole at i if its home is not in the cyclic range (i, j].
            let between = i <= j ? (home > i && home <= j) : (home > i || home <= j)
            if !between {
                index[i] = moving
                i = j
            }
        }
        index[i] = -1
    }

    /// Grows the index to `size` slots incrementally: the current table becomes the old one and
    /// `insertIntoTable` moves its entries over a few at a time. At 4 positions per insertion the
    /// old table (S positions, at most 3S/4 entries) is empty within about S/2 insertions, long
    /// before the new one (2S positions) reaches 3/4 full, 3S/4 insertions later.
    mutating func resizeTable(_ size: Int) {
        if oldTableEntries > 0 { migrate(Int.max) }
        oldTable = table
        oldTableMask = tableMask
        oldTableEntries = tableEntries
        migrationCursor = 0
        table = [Int32](repeating: -1, count: size)
        tableMask = size - 1
        tableEntries = 0
        if oldTableEntries == 0 { oldTable = [] }
    }

    /// Moves up to `budget` positions' worth of the old table into the new one. A moved entry is
    /// taken out by backward shift, which may pull the next one of its run into the same position,
    /// so the cursor only advances over empty positions; runs that wrap past the end may refill a
    /// position behind the cursor, so the cursor goes round until the old table is empty.
    mutating func migrate(_ budget: Int) {
        var work = budget
        while oldTableEntries > 0 && work > 0 {
            let slot = oldTable[migrationCursor]
            if slot >= 0 {
                Self.removeFromIndex(at: migrationCursor, in: &oldTable, mask: oldTableMask, hashes: hashes)
                oldTableEntries -= 1
                place(slot)
            } else {
                migrationCursor = (migrationCursor + 1) & oldTableMask
            }
            work -= 1
        }
        if oldTableEntries == 0 { oldTable = [] }
    }

    var indexIsGrowing: Bool { oldTableEntries > 0 }

    mutating func evictTail() {
        guard tail >= 0 else { return }
        remove(tail)
        evictions += 1
    }

    mutating func remove(_ slot: Int32) {
        unlink(slot)
        removeFromTable(slot)
        arenaGarbage += Int(keyLengths[Int(slot)])
        keyLengths[Int(slot)] = 0
        free.append(slot)
        entries -= 1
        if arenaGarbage > 65_536 && arenaGarbage * 2 > arena.count { compactArena() }
    }

    /// Rewrites the arena with only live keys (amortised: runs once half of it is garbage).
    mutating func compactArena() {
        var fresh: [UInt8] = []
        fresh.reserveCapacity(arena.count - arenaGarbage)
        for slot in 0..<keyOffsets.count where keyLengths[slot] > 0 {
            let offset = keyOffsets[slot]
            keyOffsets[slot] = fresh.count
            fresh.append(contentsOf: arena[offset..<(offset + Int(keyLengths[slot]))])
        }
        arena = fresh
        arenaGarbage = 0
    }

    mutating func moveToFront(_ slot: Int32) {
        guard head != slot else { return }
        unlink(slot)
        linkAtFront(slot)
    }

    mutating func linkAtFront(_ slot: Int32) {
        previous[Int(slot)] = -1
        next[Int(slot)] = head
        if head >= 0 { previous[Int(head)] = slot }
        head = slot
        if tail < 0 { tail = slot }
    }

    mutating func unlink(_ slot: Int32) {
        let p = previous[Int(slot)]
        let n = next[Int(slot)]
        if p >= 0 { next[Int(p)] = n } else { head = n }
        if n >= 0 { previous[Int(n)] = p } else { tail = p }
        previous[Int(slot)] = -1
        next[Int(slot)] = -1
    }
}
