import Foundation
import GRDB
import Testing
import TollgateCore
import TollgateStorage

@testable import TollgateSQLite

/// Operator credentials, last use and client secret rotation in every backend, each within its tenant.
@Suite struct CredentialStorageTests {
    let conformance = StoreConformanceTests()
    let now = Timestamp.parse("2026-12-02T10:00:00Z")!

    func operatorCredential(_ tenantId: String, name: String = "ci") -> OperatorCredential {
        OperatorCredential(
            id: Identifiers.make(.operatorCredential), tenantId: tenantId, name: name, scopes: ["billing:read"],
            createdAt: now, expiresAt: now.addingTimeInterval(3600), revokedAt: nil, tokenPrefix: "TGO-wxyz")
    }

    @Test(arguments: StoreKind.available)
    func operatorCredentials_areStoredFoundAndEndedWithinTheirTenant(kind: StoreKind) async throws {
        let store = try await kind.open()
        let world = try await conformance.makeWorld(store)
        let other = try await conformance.makeWorld(store, name: "other")
        let issued = operatorCredential(world.tenant.id)
        // Hashes are unique in the whole store, which PostgreSQL keeps between runs.
        let hash = "h-ci-\(issued.id)"
        #expect(try await store.write(.insertOperatorCredential(issued, tokenHash: hash)) == .written)
        #expect(try await store.operatorCredential(tokenHash: hash) == issued)
        // A token hash is unique across tenants.
        await #expect(throws: StorageError.self) {
            try await store.write(.insertOperatorCredential(operatorCredential(other.tenant.id), tokenHash: hash))
        }
        let snapshot = try #require(try await store.loadTenant(world.tenant.id))
        #expect(Set(snapshot.operatorCredentials) == [world.firstOperator, issued])

        // Another tenant can neither end it nor note its use.
        let later = now.addingTimeInterval(600)
        #expect(
            try await store.write(
                .revokeOperatorCredential(tenantId: other.tenant.id, credentialId: issued.id, at: later))
                == .unchanged)
        #expect(
            try await store.write(.noteCredentialUse(tenantId: other.tenant.id, credentialId: issued.id, at: later))
                == .unchanged)
        // An end ahead (a rotation's overlap), then an earlier one: the earlier wins, and a later one changes nothing.
        #expect(
            try await store.write(
                .revokeOperatorCredential(tenantId: world.tenant.id, credentialId: issued.id, at: later))
                == .written)
        #expect(
            try await store.write(
                .revokeOperatorCredential(tenantId: world.tenant.id, credentialId: issued.id, at: now))
                == .written)
        #expect(
            try await store.write(
                .revokeOperatorCredential(tenantId: world.tenant.id, credentialId: issued.id, at: later))
                == .unchanged)
        #expect(
            try await store.write(.noteCredentialUse(tenantId: world.tenant.id, credentialId: issued.id, at: later))
                == .written)
        #expect(
            try await store.write(
                .noteCredentialUse(tenantId: world.tenant.id, credentialId: world.credential.id, at: later)) == .written
        )
        let reloaded = try #require(try await store.loadTenant(world.tenant.id))
        let ended = try #require(reloaded.operatorCredentials.first { $0.id == issued.id })
        #expect(ended.revokedAt == now && ended.lastUsedAt == later)
        #expect(reloaded.credentials.first { $0.id == world.credential.id }?.lastUsedAt == later)
        #expect(try #require(try await store.loadTenant(other.tenant.id)).operatorCredentials == [other.firstOperator])
        try await store.close()
    }

    @Test(arguments: StoreKind.available)
    func clientSecretRotation_keepsThePreviousOneOnlyWithAnOverlap(kind: StoreKind) async throws {
        let store = try await kind.open()
        let world = try await conformance.makeWorld(store)
        let other = try await conformance.makeWorld(store, name: "other")
        let first = "secret-hash-\(world.agent.id)"
        let until = now.addingTimeInterval(300)
        #expect(
            try await store.write(
                .rotateClientSecret(
                    tenantId: other.tenant.id, agentId: world.agent.id, secretHash: "x", previousUntil: nil))
                == .unchanged)
        #expect(
            try await store.write(
                .rotateClientSecret(
                    tenantId: world.tenant.id, agentId: world.agent.id, secretHash: "second", previousUntil: until))
                == .written)
        #expect(
            try await store.agent(clientId: world.agent.clientId)?.secrets
                == ClientSecrets(hash: "second", previousHash: first, previousUntil: until))
        #expect(
            try await store.write(
                .rotateClientSecret(
                    tenantId: world.tenant.id, agentId: world.agent.id, secretHash: "third", previousUntil: nil))
                == .written)
        #expect(try await store.agent(clientId: world.agent.clientId)?.secrets == ClientSecrets(hash: "third"))
        try await store.close()
    }

    /// A database of tenants made before operator credentials existed: each tenant's token goes on working, as
    /// the tenant's first operator credential, named "initial", with every scope.
    @Test func migration_makesEachTenantsTokenItsFirstOperatorCredential() async throws {
        let path = StoreKind.temporarySQLitePath()
        let old = try DatabaseQueue(path: path)
        try SQLiteMigrations.migrator.migrate(old, upTo: "v16-products")
        try await old.write { db in
            try db.execute(
                sql: """
                    INSERT INTO tenants(id, name, operator_token_hash, created_at_ms)
                    VALUES ('ten_old', 'old', 'old-hash', 1795000000123)
                    """)
        }
        try old.close()
        let store = try SQLiteStore(path: path)
        let first = try #require(try await store.operatorCredential(tokenHash: "old-hash"))
        #expect(first.tenantId == "ten_old" && first.name == "initial" && first.scopes == ["operator"])
        #expect(first.isUsable(at: now) && first.id.hasPrefix("opc_"))
        #expect(try await store.loadTenant("ten_old")?.operatorCredentials == [first])
        try await store.close()
    }
}
