import Foundation
import Testing
import TollgateCore
import TollgatePricing
import TollgateStorage
import TollgateStrategies

@testable import TollgateRuntime

/// The tenant's records as a value: who a credential's call is charged to, under which plan version.
@Suite struct TenantDirectoryTests {
    static let t0 = Date(timeIntervalSince1970: 1_795_000_000)

    static func directory() throws -> TenantDirectory {
        var snapshot = TenantSnapshot(
            tenant: TenantRecord(id: "ten_1", name: "t", createdAt: t0))
        snapshot.customers = [Customer(id: "cus_1", tenantId: "ten_1", name: "c", externalId: nil)]
        snapshot.teams = [Team(id: "team_1", tenantId: "ten_1", customerId: "cus_1", name: "team")]
        snapshot.agents = [
            Agent(id: "agt_1", tenantId: "ten_1", teamId: "team_1", name: "a", agentType: nil, clientId: "cli_1")
        ]
        snapshot.credentials = [
            Credential(
                id: "cred_1", tenantId: "ten_1", agentId: "agt_1", scopes: ["meter:write"],
                expiresAt: t0.addingTimeInterval(60), revokedAt: nil, spendLimit: nil),
            Credential(
                id: "cred_read", tenantId: "ten_1", agentId: "agt_1", scopes: ["usage:read"],
                expiresAt: t0.addingTimeInterval(60), revokedAt: nil, spendLimit: Money(nanos: 5)),
        ]
        for version in 1...2 {
            let charges = #"[{"strategy":"per_tool","rates":{"*":"\#(version)"}}]"#
            snapshot.plans.append(
                PlanRecord(
                    tenantId: "ten_1", planId: "plan_1", name: "p", version: version,
                    document: #"{"name":"p","currency":"USD","charges":\#(charges)}"#, createdAt: t0))
        }
        snapshot.subscriptions = [
            SubscriptionRecord(
                id: "sub_1", tenantId: "ten_1", customerId: "cus_1", planId: "plan_1", version: 1, startsAt: t0)
        ]
        return try TenantDirectory(snapshot: snapshot, registry: .builtIn)
    }

    @Test func aCredentialsCallIsChargedToItsAgentsCustomer_underThePlanInForce() throws {
        var directory = try Self.directory()
        let credential = try directory.meterCredential("cred_1", at: Self.t0)
        #expect(try directory.pricing(for: credential, at: Self.t0).plan.version == 1)
        // A swap takes effect at its millisecond, not before.
        let swap = PlanSwapRecord(
            id: "swp_1", tenantId: "ten_1", subscriptionId: "sub_1", planId: "plan_1", version: 2,
            effectiveAt: Self.t0.addingTimeInterval(10))
        directory.add(swap)
        #expect(try directory.pricing(for: credential, at: Self.t0.addingTimeInterval(9.999)).plan.version == 1)
        #expect(try directory.pricing(for: credential, at: Self.t0.addingTimeInterval(10)).plan.version == 2)
        directory.remove(swap)
        #expect(try directory.pricing(for: credential, at: Self.t0.addingTimeInterval(10)).plan.version == 1)
    }

    @Test func aCustomerWithoutASubscription_cannotBeCharged() throws {
        let directory = try Self.directory()
        let credential = try directory.meterCredential("cred_1", at: Self.t0)
        #expect(throws: TollgateError.self) {
            try directory.pricing(for: credential, at: Self.t0.addingTimeInterval(-1))
        }
    }

    @Test func aRevokedExpiredOrReadOnlyCredential_cannotMeter() throws {
        var directory = try Self.directory()
        #expect(throws: TollgateError.forbidden("credential lacks scope meter:write")) {
            try directory.meterCredential("cred_read", at: Self.t0)
        }
        #expect(throws: TollgateError.self) {
            try directory.meterCredential("cred_1", at: Self.t0.addingTimeInterval(60))
        }
        directory.revoke("cred_1", at: Self.t0)
        #expect(throws: TollgateError.self) { try directory.meterCredential("cred_1", at: Self.t0) }
        #expect(throws: TollgateError.self) { try directory.meterCredential("cred_unknown", at: Self.t0) }
        #expect(directory.limitedCredentials.map(\.id) == ["cred_read"])
    }

    @Test func planVersionsAndNames() throws {
        var directory = try Self.directory()
        #expect(try directory.plan(id: "plan_1", version: nil).version == 2)
        #expect(directory.nextVersion(of: "plan_1") == 3)
        #expect(directory.planId(named: "p") == "plan_1")
        let third = try directory.plan(id: "plan_1", version: 2)
        #expect(throws: TollgateError.self) { try directory.plan(id: "plan_1", version: 3) }
        #expect(throws: TollgateError.self) { try directory.plan(id: "plan_x", version: nil) }
        directory.remove(third)
        #expect(try directory.plan(id: "plan_1", version: nil).version == 1)
    }
}
