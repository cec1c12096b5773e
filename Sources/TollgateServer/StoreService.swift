import Logging
import ServiceLifecycle
import TollgatePostgres
import TollgateSQLite
import TollgateStorage

/// Keeps the store open for the life of the service group and closes it last, after the listener has
/// drained and the ledger writer has flushed (services shut down in reverse start order).
final class StoreService: Service, Sendable {
    let store: any TollgateStore

    init(store: any TollgateStore) { self.store = store }

    func run() async throws {
        // Sleeps until shutdown (graceful or cancellation), then closes.
        try? await gracefulShutdown()
        try await store.close()
    }

    static func open(_ configuration: ServerConfiguration, logger: Logger) async throws -> any TollgateStore {
        let limits = configuration.limits
        switch try configuration.storage() {
        case .sqlite(let path): return try SQLiteStore(path: path)
        case .postgres(let url):
            let options = PostgresStore.Options(
                startupTimeout: .milliseconds(limits.storageStartupTimeoutMs),
                requestTimeout: .milliseconds(limits.storageTimeoutMs))
            return try await PostgresStore(url: url, options: options, logger: logger)
        case .memory: return InMemoryStore()
        }
    }
}
