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
        switch try configuration.storage() {
        case .sqlite(let path): return try SQLiteStore(path: path, configuration: configuration.sqlite, logger: logger)
        case .postgres(let url):
            return try await PostgresStore(url: url, configuration: configuration.postgres, logger: logger)
        case .memory: return InMemoryStore()
        }
    }
}
