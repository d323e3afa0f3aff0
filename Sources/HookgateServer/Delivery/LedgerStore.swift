import HookgateCore

/// What a ledger store says of an event that this process is about to forward: the local ledger
/// (`SharedLedger`) has just found it neither delivered here nor in flight here.
enum StoreClaim: Sendable {
    /// Nobody else has it: forward it. The store holds this process's claim until
    /// `recordDelivered` or `release`.
    case forward
    /// Delivered before (by another replica, or before a restart): answer it as a duplicate.
    case delivered
    /// Another replica is forwarding it and did not finish within the wait allowed.
    case claimedElsewhere
    /// The store could not answer and its policy is to refuse (`on_unavailable: reject`).
    case unavailable
}

/// Where delivered ids live beyond this process's memory (`ledger.store`). The local ledger stays
/// the index that answers requests; a store only learns its transitions (claim, delivered,
/// released, renewed) and may be asked, before the first copy in this process is forwarded,
/// whether someone else has the event. Stores are shared by every worker and are thread-safe.
protocol LedgerStore: AnyObject, Sendable {
    /// Asks before the first copy in this process is forwarded. `answer` runs on `worker`'s loop
    /// thread: at once for a store that need not ask anyone.
    func claim(route: String, key: EventKey, retryCount: Int, worker: Worker, answer: @escaping (StoreClaim) -> Void)
    /// The upstream accepted the event (called after the sender has been answered, so a store
    /// that fails here can never turn the upstream's 2xx into a 5xx).
    func recordDelivered(route: String, key: EventKey, ttlMilliseconds: Int64, worker: Worker)
    /// The forward failed: give up this process's claim so that the sender's retry is forwarded.
    func release(route: String, key: EventKey, worker: Worker)
    /// A duplicate was answered from the local index: remember it for another ttl, as the local
    /// ledger does.
    func renew(route: String, key: EventKey, ttlMilliseconds: Int64, worker: Worker)
    /// Shutdown: make everything recorded so far durable. Blocks until it is.
    func flush()
}

/// `ledger.store: memory`: nothing beyond the local ledger (today's behaviour; lost on restart).
final class MemoryLedgerStore: LedgerStore {
    func claim(route: String, key: EventKey, retryCount: Int, worker: Worker, answer: @escaping (StoreClaim) -> Void) {
        answer(.forward)
    }
    func recordDelivered(route: String, key: EventKey, ttlMilliseconds: Int64, worker: Worker) {}
    func release(route: String, key: EventKey, worker: Worker) {}
    func renew(route: String, key: EventKey, ttlMilliseconds: Int64, worker: Worker) {}
    func flush() {}
}
