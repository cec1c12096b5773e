import Foundation
import Testing
import TollgateStorage

@testable import TollgateSQLite

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

/// The writer never checkpoints; a connection beside it does. Without that, the WAL would grow by every page
/// ever written, and opening the file after a crash would replay all of it.
@Suite struct SQLiteCheckpointTests {
    @Test func theWALIsCopiedBackWhileTheWriterKeepsCommitting() async throws {
        let path = StoreKind.temporarySQLitePath()
        let store = try SQLiteStore(path: path, configuration: .wal(framesMax: 500))
        let conformance = StoreConformanceTests()
        let world = try await conformance.makeWorld(store)
        for group in 0..<200 {
            let entries = try (0..<25).map { try conformance.entry(world, key: "k-\(group)-\($0)", cost: "0.01") }
            _ = try await store.commit(entries)
        }
        try await store.checkpointer.idle()
        let walBytes = try FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int ?? 0
        // 5,000 charges write over 4,000 pages (16 MB) to the WAL in all: 18 MB with nobody checkpointing, 11 MB
        // with the paced background checkpoints alone. With the writer catching up past 500 frames the WAL starts
        // over as it goes and stays near 2–3 MB.
        #expect(walBytes < 8 << 20, "WAL is \(walBytes) bytes")
        let usage = try await store.usage(tenantId: world.tenant.id, filter: UsageFilter(), groupBy: [])
        #expect(usage.first?.calls == 5000)
        try await store.close()
    }

    /// Writes other than the ledger's (sessions, holds, agents) ask for checkpoints too: a tenant opening
    /// sessions without a single charge once grew the WAL without bound.
    @Test func theWALStaysBoundedUnderWritesOtherThanCharges() async throws {
        let path = StoreKind.temporarySQLitePath()
        let store = try SQLiteStore(path: path, configuration: .wal(framesMax: 500))
        let world = try await StoreConformanceTests().makeWorld(store)
        for n in 0..<3000 {
            let session = SessionRecord(
                tenantId: world.tenant.id, id: "ses_\(n)", agentId: world.agent.id,
                teamId: world.team.id, customerId: world.customer.id, openedAt: Date(),
                metadata: String(repeating: "m", count: 1000))
            #expect(try await store.write(.openSession(session)) == .written)
        }
        try await store.checkpointer.idle()
        let walBytes = try FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int ?? 0
        // 3,000 transactions of a page or more: 12 MB and more of WAL without checkpoints.
        #expect(walBytes < 6 << 20, "WAL is \(walBytes) bytes")
        try await store.close()
    }
}

/// One process at a time owns a database file: a second server on it would neither see the first's spend
/// under its caps nor its pending idempotency keys.
@Suite struct SQLiteOwnershipTests {
    @Test func aSecondStoreOnTheSameFileIsRefusedUntilTheFirstCloses() async throws {
        let path = StoreKind.temporarySQLitePath()
        let first = try SQLiteStore(path: path)
        #expect {
            _ = try SQLiteStore(path: path)
        } throws: { error in
            "\(error)".contains("another process (or store) has \(path) open")
        }
        try await first.close()
        let second = try SQLiteStore(path: path)
        try await second.close()
    }
}
