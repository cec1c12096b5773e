import Testing
import TollgateSQLite

/// What the SQLite store promises about durability, read back from SQLite itself.
@Suite struct SQLiteDurabilityTests {
    /// GRDB's pool switches its writer to `synchronous = NORMAL` when it enables WAL; the store must undo
    /// that, or a commit acknowledged to an agent could vanish with the machine's power.
    @Test func theWriterCommitsInWALModeWithSynchronousFull() async throws {
        let store = try SQLiteStore(path: StoreKind.temporarySQLitePath())
        let settings = try await store.writerDurability()
        #expect(settings.journalMode == "wal")
        #expect(settings.synchronous == 2, "2 is FULL: every commit fsyncs the WAL")
        try await store.close()
    }

    @Test func reopeningKeepsSynchronousFull() async throws {
        let path = StoreKind.temporarySQLitePath()
        try await SQLiteStore(path: path).close()
        let store = try SQLiteStore(path: path)
        #expect(try await store.writerDurability().synchronous == 2)
        try await store.close()
    }
}
