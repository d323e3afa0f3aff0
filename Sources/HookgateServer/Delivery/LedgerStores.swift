import Foundation
import HookgateCore

/// Why the configured ledger store cannot start (or a file `check` found unusable); the message
/// names the key and what to do.
public struct LedgerStoreError: Error, CustomStringConvertible {
    public let description: String
}

/// The store `ledger.store` names. The sqlite store loads its file into `ledger`, whose routes
/// must already be configured.
func makeLedgerStore(_ configuration: Configuration, ledger: SharedLedger, metrics: GatewayMetrics) throws -> LedgerStore {
    switch configuration.ledger.store {
    case .memory:
        return MemoryLedgerStore()
    case .sqlite:
        guard let sqlite = configuration.ledger.sqlite else { throw LedgerStoreError(description: "ledger.sqlite: is required when ledger.store is sqlite") }
        return try SQLiteLedgerStore(sqlite, ledger: ledger, metrics: LedgerMetrics(registry: metrics.registry, store: "sqlite"))
    case .redis:
        guard let redis = configuration.ledger.redis else { throw LedgerStoreError(description: "ledger.redis: is required when ledger.store is redis") }
        return try RedisLedgerStore.make(redis, registry: metrics.registry)
    }
}

/// `check`: an existing sqlite ledger file that `serve` would refuse (not a database, another
/// application's, another format, damaged). Opened read-only; a missing file is fine, and so is
/// a file locked by the hookgate serving from it (it was checked when that one started).
public func checkLedgerStore(_ configuration: Configuration) throws {
    guard configuration.ledger.store == .sqlite, let path = configuration.ledger.sqlite?.path,
          FileManager.default.fileExists(atPath: path) else { return }
    do {
        _ = try SQLiteLedgerStore.open(path: path, create: false)
    } catch let error as SQLiteError where error.isBusy {
        return
    }
}
