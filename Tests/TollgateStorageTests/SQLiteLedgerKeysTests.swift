import Foundation
import GRDB
import Testing
import TollgateCore
import TollgateStorage

@testable import TollgateSQLite

/// Idempotency keys on SQLite live first in `idempotency_pending`, then in sorted chunks in
/// `idempotency_index` (`LedgerKeys`). Wherever a key is, a second charge under it must be refused.
@Suite struct SQLiteLedgerKeysTests {
    let conformance = StoreConformanceTests()

    /// Every key in exactly one of the two tables, and the counts of both.
    func keyTables(_ path: String) throws -> (pending: Int, indexed: Int, keysInBoth: Int) {
        let db = try DatabaseQueue(path: path)
        defer { try? db.close() }
        return try db.read { db in
            (
                try Int.fetchOne(db, sql: "SELECT count(*) FROM idempotency_pending")!,
                try Int.fetchOne(db, sql: "SELECT count(*) FROM idempotency_index")!,
                try Int.fetchOne(
                    db,
                    sql: """
                        SELECT count(*) FROM idempotency_pending p JOIN idempotency_index i USING (tenant_id, key)
                        """)!
            )
        }
    }

    @Test func aKeyIsRefusedWhetherPendingIndexedOrReadBackAfterReopening() async throws {
        let path = StoreKind.temporarySQLitePath()
        var store = try SQLiteStore(path: path, configuration: .keys(indexAfter: 8, chunk: 4))
        let world = try await conformance.makeWorld(store)
        for group in 0..<50 {
            let outcomes = try await store.commit(
                try (0..<3).map { try conformance.entry(world, key: "k\(group * 3 + $0)", cost: "0.01") })
            #expect(outcomes == [.recorded, .recorded, .recorded])
        }
        var tables = try keyTables(path)
        #expect(tables.pending < 8 && tables.pending == store.keys.pendingCount)
        #expect(tables.pending + tables.indexed == 150 && tables.keysInBoth == 0)

        // Old keys mixed with new ones, in groups: every old key answers its stored record and writes nothing.
        func replayAll(_ store: SQLiteStore, fresh: String) async throws {
            for group in 0..<15 {
                var entries = try (0..<10).map { try conformance.entry(world, key: "k\(group * 10 + $0)", cost: "9") }
                entries.append(try conformance.entry(world, key: "\(fresh)\(group)", cost: "0.01"))
                let outcomes = try await store.commit(entries)
                for (index, outcome) in outcomes.prefix(10).enumerated() {
                    guard case .duplicate(let stored) = outcome else {
                        Issue.record("k\(group * 10 + index) was charged twice")
                        continue
                    }
                    #expect(stored.result == #"{"cost":"0.01"}"#)
                    #expect(stored.params == #"{"k":"k\#(group * 10 + index)"}"#)
                    #expect(stored.createdAt == conformance.now)
                }
                #expect(outcomes.last == .recorded)
            }
        }
        try await replayAll(store, fresh: "a")
        try await store.close()

        store = try SQLiteStore(path: path, configuration: .keys(indexAfter: 8, chunk: 4))
        #expect(store.keys.pendingCount == (try keyTables(path)).pending)
        try await replayAll(store, fresh: "b")
        for key in ["k0", "k149", "a0", "b14"] {
            #expect(try await store.idempotencyRecord(tenantId: world.tenant.id, key: key) != nil, "\(key)")
        }
        // Keys are per tenant: another tenant's k0 is free.
        let other = try await conformance.makeWorld(store, name: "other")
        #expect(try await store.idempotencyRecord(tenantId: other.tenant.id, key: "k0") == nil)
        #expect(try await store.commit([try conformance.entry(other, key: "k0", cost: "1")]) == [.recorded])

        let usage = try await store.usage(tenantId: world.tenant.id, filter: UsageFilter(), groupBy: [])
        #expect(usage.first?.calls == 180)
        tables = try keyTables(path)
        #expect(tables.pending + tables.indexed == 181 && tables.keysInBoth == 0)
        try await store.close()
    }

    /// A batch of events is one group larger than a chunk: each such group moves as many keys as it adds, so the
    /// pending keys (in memory and in their table) stay bounded however long batches keep coming.
    @Test func groupsLargerThanAChunkDoNotLeaveThePendingKeysGrowing() async throws {
        let path = StoreKind.temporarySQLitePath()
        let store = try SQLiteStore(path: path, configuration: .keys(indexAfter: 8, chunk: 4))
        let world = try await conformance.makeWorld(store)
        for group in 0..<20 {
            let outcomes = try await store.commit(
                try (0..<10).map { try conformance.entry(world, key: "k\(group * 10 + $0)", cost: "0.01") })
            #expect(outcomes.allSatisfy { $0 == .recorded })
            #expect(store.keys.pendingCount <= 8 + 10, "after group \(group)")
        }
        let tables = try keyTables(path)
        #expect(tables.pending == store.keys.pendingCount && tables.pending + tables.indexed == 200)
        #expect(tables.keysInBoth == 0)
        let again = try await store.commit([try conformance.entry(world, key: "k0", cost: "9")])
        #expect(again.count == 1 && again.first != .recorded)
        try await store.close()
    }

    @Test func twoEntriesOfOneGroupUnderOneKeyAreChargedOnce() async throws {
        let store = try SQLiteStore(path: StoreKind.temporarySQLitePath())
        let world = try await conformance.makeWorld(store)
        let first = try conformance.entry(world, key: "same", cost: "1")
        let outcomes = try await store.commit([first, try conformance.entry(world, key: "same", cost: "2")])
        #expect(outcomes == [.recorded, .duplicate(first.idempotency)])
        let usage = try await store.usage(tenantId: world.tenant.id, filter: UsageFilter(), groupBy: [])
        #expect(usage.first?.calls == 1)
        try await store.close()
    }

    enum FailurePoint: CaseIterable { case aCharge, theMoveIntoTheIndex, theCommit }

    /// Refuses to commit the next transaction, as a full disk or an I/O error at COMMIT would.
    final class CommitVeto: TransactionObserver, @unchecked Sendable {
        struct Refused: Error {}
        var armed = true
        func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool { false }
        func databaseDidChange(with event: DatabaseEvent) {}
        func databaseWillCommit() throws {
            if armed {
                armed = false
                throw Refused()
            }
        }
        func databaseDidCommit(_ db: Database) {}
        func databaseDidRollback(_ db: Database) {}
    }

    /// A group that fails is rolled back whole; the keys it recorded or moved must be as if it never ran,
    /// in the database and in the store's memory, wherever the failure happens.
    @Test(arguments: FailurePoint.allCases)
    func aGroupThatRollsBackLeavesEveryKeyAsItWas(failing at: FailurePoint) async throws {
        let path = StoreKind.temporarySQLitePath()
        let store = try SQLiteStore(path: path, configuration: .keys(indexAfter: 4, chunk: 4))
        let world = try await conformance.makeWorld(store)
        _ = try await store.commit(try (0..<3).map { try conformance.entry(world, key: "k\($0)", cost: "1") })
        // With the next group the pending keys reach 4, so it would move them all into the index.
        var entries = [try conformance.entry(world, key: "new", cost: "1")]
        let veto = CommitVeto()
        switch at {
        case .aCharge:
            // A charge of the group fails its table's CHECK before any key is recorded.
            var broken = try conformance.entry(world, key: "broken", cost: "1")
            broken.charge.quantity = -1
            entries.append(broken)
        case .theMoveIntoTheIndex:
            // k0 is planted in the index behind the store's back, so moving it there fails.
            try plant(path, world.tenant.id)
        case .theCommit:
            // Every statement succeeds; the COMMIT does not.
            store.pool.add(transactionObserver: veto)
        }
        await #expect(throws: StorageError.self) { try await store.commit(entries) }
        #expect(store.keys.pendingCount == 3)
        let planted = at == .theMoveIntoTheIndex ? 1 : 0
        #expect(try keyTables(path) == (3, planted, planted))
        #expect(try await store.idempotencyRecord(tenantId: world.tenant.id, key: "new") == nil)

        if at == .theMoveIntoTheIndex { try unplant(path) }
        let outcomes = try await store.commit(
            try ["k0", "k2", "new"].map { try conformance.entry(world, key: $0, cost: "1") })
        #expect(outcomes.count == 3)
        #expect(outcomes.last == .recorded, "the rolled-back key is free")
        #expect(outcomes.prefix(2).allSatisfy { if case .duplicate = $0 { true } else { false } })
        #expect(try keyTables(path) == (0, 4, 0))
        try await store.close()
    }

    func plant(_ path: String, _ tenantId: String) throws {
        let other = try DatabaseQueue(path: path)
        try other.write { db in
            try db.execute(sql: "INSERT INTO idempotency_index VALUES (?, 'k0', 'rcp_planted')", arguments: [tenantId])
        }
        try other.close()
    }

    func unplant(_ path: String) throws {
        let other = try DatabaseQueue(path: path)
        try other.write { db in try db.execute(sql: "DELETE FROM idempotency_index WHERE receipt_id = 'rcp_planted'") }
        try other.close()
    }

    /// A database written before keys moved out of the `idempotency` table keeps refusing its old keys.
    @Test func migrationMovesEveryStoredKeyIntoTheIndex() async throws {
        let path = StoreKind.temporarySQLitePath()
        let old = try DatabaseQueue(path: path)
        try SQLiteMigrations.migrator.migrate(old, upTo: "v4-reservations")
        try await old.write { db in
            try db.execute(
                sql: """
                    INSERT INTO charges(tenant_id, receipt_id, customer_id, team_id, agent_id, credential_id,
                        session_id, subscription_id, plan_id, plan_version, tool, quantity, input_tokens,
                        output_tokens, reasoning_tokens, duration_ms, status, cost_nanos, provider_cost_nanos,
                        currency, idempotency_key, at_ms, day)
                    VALUES ('ten_a', 'rcp_1', 'cus', 'team', 'agt', 'cred', 'ses', 'sub', 'plan', 1, 'search', 1,
                        0, 0, 0, 0, NULL, 1000000, 0, 'USD', 'old-key', 1795000000123, 20774);
                    INSERT INTO idempotency(tenant_id, key, method, params, result, created_at_ms)
                    VALUES ('ten_a', 'old-key', 'meter.verify', '{"tool":"search"}', '{"cost":"0.001"}', 1795000000123);
                    """)
        }
        try old.close()
        let store = try SQLiteStore(path: path)
        let stored = try #require(try await store.idempotencyRecord(tenantId: "ten_a", key: "old-key"))
        #expect(
            stored
                == IdempotencyRecord(
                    tenantId: "ten_a", key: "old-key", method: "meter.verify",
                    params: #"{"tool":"search"}"#, result: #"{"cost":"0.001"}"#,
                    createdAt: Timestamp.date(millis: 1_795_000_000_123)))
        #expect(try keyTables(path) == (0, 1, 0))
        try await store.close()
    }
}
