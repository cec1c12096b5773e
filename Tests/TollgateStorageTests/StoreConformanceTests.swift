import Foundation
import Testing
import TollgateCore
import TollgateSQLite
import TollgateStorage

/// One suite of behaviour tests, run against every backend. Each test makes its own tenants (ids are random),
/// so runs against a shared PostgreSQL database never see each other's rows.
@Suite struct StoreConformanceTests {
    let now = Date(timeIntervalSince1970: 1_795_000_000.123)  // 2026-11-18T…

    struct World {
        var tenant: TenantRecord
        var customer: Customer
        var team: Team
        var agent: Agent
        var credential: Credential
        var firstOperator: OperatorCredential
        var plan: PlanRecord
        var subscription: SubscriptionRecord
        var path: ChargePath
    }

    func makeWorld(_ store: any TollgateStore, name: String = "t") async throws -> World {
        let tenant = TenantRecord(id: Identifiers.make(.tenant), name: name, createdAt: now)
        let firstOperator = OperatorCredential(
            id: Identifiers.make(.operatorCredential), tenantId: tenant.id, name: "initial", scopes: ["operator"],
            createdAt: now, expiresAt: nil, revokedAt: nil, tokenPrefix: "TGO-abcd")
        try await store.insertTenant(tenant, firstOperator: firstOperator, tokenHash: "op-hash-\(tenant.id)")
        // Not the defaults (UTC, calendar months): each backend must keep them.
        let customer = Customer(
            id: Identifiers.make(.customer), tenantId: tenant.id, name: "c", externalId: "ext-1",
            timeZone: "America/Sao_Paulo", taxRate: try Money(decimal: "0.075"))
        try await store.write(.insertCustomer(customer))
        let team = Team(id: Identifiers.make(.team), tenantId: tenant.id, customerId: customer.id, name: "team")
        try await store.write(.insertTeam(team))
        let agent = Agent(
            id: Identifiers.make(.agent), tenantId: tenant.id, teamId: team.id, name: "a", agentType: nil,
            clientId: Identifiers.make(.client))
        try await store.insertAgent(agent, clientSecretHash: "secret-hash-\(agent.id)")
        let credential = Credential(
            id: Identifiers.make(.credential), tenantId: tenant.id, agentId: agent.id,
            scopes: ["meter:write"], expiresAt: now.addingTimeInterval(3600), revokedAt: nil,
            spendLimit: try Money(decimal: "5"))
        try await store.insertCredential(credential, tokenHash: "token-hash-\(credential.id)")
        let plan = PlanRecord(
            tenantId: tenant.id, planId: Identifiers.make(.plan), name: "p", version: 1,
            document: #"{"name":"p"}"#, createdAt: now)
        try await store.write(.insertPlan(plan))
        let subscription = SubscriptionRecord(
            id: Identifiers.make(.subscription), tenantId: tenant.id,
            customerId: customer.id, planId: plan.planId, version: 1, startsAt: now, period: .week(anchorWeekday: 3))
        try await store.write(.insertSubscription(subscription))
        let path = ChargePath(
            customerId: customer.id, teamId: team.id, agentId: agent.id, sessionId: "ses_1",
            credentialId: credential.id)
        return World(
            tenant: tenant, customer: customer, team: team, agent: agent, credential: credential,
            firstOperator: firstOperator, plan: plan, subscription: subscription, path: path)
    }

    func entry(
        _ world: World, key: String, tool: String = "search", cost: String, at: Date? = nil,
        agentId: String? = nil, model: String? = nil
    ) throws -> LedgerEntry {
        var path = world.path
        if let agentId { path.agentId = agentId }
        let charge = ChargeRecord(
            receiptId: Identifiers.make(.receipt), tenantId: world.tenant.id, path: path,
            subscriptionId: world.subscription.id, planId: world.plan.planId, planVersion: 1, tool: tool, quantity: 1,
            inputTokens: 10, outputTokens: 5, cost: try Money(decimal: cost),
            providerCost: try Money(decimal: "0.0001"), model: model,
            currency: "USD", idempotencyKey: key, at: at ?? now)
        return LedgerEntry(
            charge: charge,
            idempotency: IdempotencyRecord(
                tenantId: world.tenant.id, key: key, method: "meter.verify", params: #"{"k":"\#(key)"}"#,
                result: #"{"cost":"\#(cost)"}"#, createdAt: at ?? now))
    }

    @Test(arguments: StoreKind.available)
    func hierarchy_roundTripsAndLoadsOnlyItsTenant(kind: StoreKind) async throws {
        let store = try await kind.open()
        let world = try await makeWorld(store)
        let other = try await makeWorld(store, name: "other")
        let snapshot = try #require(try await store.loadTenant(world.tenant.id))
        #expect(snapshot.tenant == world.tenant)
        #expect(snapshot.customers == [world.customer])
        #expect(snapshot.teams == [world.team])
        #expect(snapshot.agents == [world.agent])
        #expect(snapshot.credentials == [world.credential])
        #expect(snapshot.plans == [world.plan])
        #expect(snapshot.subscriptions == [world.subscription])
        #expect(!snapshot.customers.contains(other.customer))
        #expect(try await store.loadTenant("ten_missing") == nil)
        try await store.close()
    }

    @Test(arguments: StoreKind.available)
    func tokens_areFoundByHashOnly(kind: StoreKind) async throws {
        let store = try await kind.open()
        let world = try await makeWorld(store)
        #expect(try await store.operatorCredential(tokenHash: "op-hash-\(world.tenant.id)") == world.firstOperator)
        #expect(try await store.operatorCredential(tokenHash: "nope") == nil)
        #expect(try await store.credential(tokenHash: "token-hash-\(world.credential.id)") == world.credential)
        let found = try #require(try await store.agent(clientId: world.agent.clientId))
        #expect(found.agent == world.agent && found.secrets == ClientSecrets(hash: "secret-hash-\(world.agent.id)"))
        #expect(try await store.tenants().contains(world.tenant))
        try await store.close()
    }

    @Test(arguments: StoreKind.available)
    func revoke_isScopedByTenant(kind: StoreKind) async throws {
        let store = try await kind.open()
        let world = try await makeWorld(store)
        let other = try await makeWorld(store, name: "other")
        // Another tenant naming this credential changes nothing.
        try await store.write(.revokeCredential(tenantId: other.tenant.id, credentialId: world.credential.id, at: now))
        #expect(try await store.credential(tokenHash: "token-hash-\(world.credential.id)")?.revokedAt == nil)
        try await store.write(.revokeCredential(tenantId: world.tenant.id, credentialId: world.credential.id, at: now))
        let revoked = try await store.credential(tokenHash: "token-hash-\(world.credential.id)")?.revokedAt
        #expect(revoked.map(Timestamp.millis) == Timestamp.millis(now))
        try await store.close()
    }

    /// An entry priced after a call that turns out not to be recorded (here: a key stored already, found in the
    /// same group) is not written, and its key stays free; an entry whose price already left that call out,
    /// or that was priced before it, is written.
    @Test(arguments: StoreKind.available)
    func anEntryPricedAfterADuplicate_isStale_andWritesNothing(kind: StoreKind) async throws {
        let store = try await kind.open()
        let world = try await makeWorld(store)
        _ = try await store.commit([try entry(world, key: "k0", cost: "1")])
        let stream = PricingStream()
        func priced(_ key: String, _ number: UInt64, dropsKnown: Int = 0) throws -> LedgerEntry {
            var entry = try entry(world, key: key, cost: "1")
            entry.pricing = PricingTicket(stream: stream, number: number, dropsKnown: dropsKnown)
            return entry
        }
        // 1 is priced first; 2 is the retry of k0, stored already; 3 was priced with 2 counted; 4 was priced
        // once the loss of 2 was known (dropsKnown 1).
        let outcomes = try await store.commit([
            try priced("k1", 1), try priced("k0", 2), try priced("k3", 3), try priced("k4", 4, dropsKnown: 1),
        ])
        #expect(outcomes.count == 4)
        #expect(outcomes[0] == .recorded)
        if case .duplicate(let stored) = outcomes[1] {
            #expect(stored.key == "k0")
        } else {
            Issue.record("\(outcomes[1])")
        }
        #expect(outcomes[2] == .stale)
        #expect(outcomes[3] == .recorded)
        #expect(stream.droppedNumbers == [2])
        #expect(try await store.idempotencyRecord(tenantId: world.tenant.id, key: "k3") == nil)
        let usage = try await store.usage(tenantId: world.tenant.id, filter: UsageFilter(), groupBy: [])
        #expect(usage.first?.calls == 3)
        // Priced again, the stale call is written under its key.
        #expect(try await store.commit([try priced("k3", 5, dropsKnown: 1)]) == [.recorded])
        try await store.close()
    }

    @Test(arguments: StoreKind.available)
    func duplicates_areRefused(kind: StoreKind) async throws {
        let store = try await kind.open()
        let world = try await makeWorld(store)
        await #expect(throws: StorageError.self) { try await store.write(.insertPlan(world.plan)) }
        await #expect(throws: StorageError.self) {
            try await store.insertTenant(
                world.tenant, firstOperator: world.firstOperator, tokenHash: "op-hash-\(world.tenant.id)")
        }
        await #expect(throws: StorageError.self) { try await store.write(.insertCustomer(world.customer)) }
        try await store.close()
    }

    @Test(arguments: StoreKind.available)
    func caps_upsertReplacesTheCapOfAScopeAndPeriod(kind: StoreKind) async throws {
        let store = try await kind.open()
        let world = try await makeWorld(store)
        let target = ScopeRef(.agent, world.agent.id)
        try await store.write(
            .upsertCap(
                Cap(
                    id: "cap_a", tenantId: world.tenant.id, target: target, limit: try Money(decimal: "1"),
                    period: .day, warnAtPercent: 80)))
        try await store.write(
            .upsertCap(
                Cap(
                    id: "cap_a", tenantId: world.tenant.id, target: target, limit: try Money(decimal: "2"),
                    period: .day, warnAtPercent: nil)))
        try await store.write(
            .upsertCap(
                Cap(
                    id: "cap_b", tenantId: world.tenant.id, target: target, limit: try Money(decimal: "9"),
                    period: .month, warnAtPercent: nil)))
        let caps = try #require(try await store.loadTenant(world.tenant.id)).caps.sorted { $0.id < $1.id }
        #expect(caps.map(\.limit) == [try Money(decimal: "2"), try Money(decimal: "9")])
        #expect(caps[0].warnAtPercent == nil)
        try await store.close()
    }

    @Test(arguments: StoreKind.available)
    func commit_writesTheGroupAndItsIdempotencyRecords(kind: StoreKind) async throws {
        let store = try await kind.open()
        let world = try await makeWorld(store)
        let outcomes = try await store.commit([
            try entry(world, key: "k1", cost: "0.25"), try entry(world, key: "k2", cost: "0.001"),
        ])
        #expect(outcomes == [.recorded, .recorded])
        let record = try #require(try await store.idempotencyRecord(tenantId: world.tenant.id, key: "k1"))
        #expect(record.result == #"{"cost":"0.25"}"#)
        #expect(record.method == "meter.verify")
        let other = try await makeWorld(store, name: "other")
        #expect(try await store.idempotencyRecord(tenantId: other.tenant.id, key: "k1") == nil)
        try await store.close()
    }

    @Test(arguments: StoreKind.available)
    func commit_ofAKeyAlreadyStored_writesNothingAndAnswersTheStoredRecord(kind: StoreKind) async throws {
        let store = try await kind.open()
        let world = try await makeWorld(store)
        _ = try await store.commit([try entry(world, key: "k1", cost: "1")])
        let first = try #require(try await store.idempotencyRecord(tenantId: world.tenant.id, key: "k1"))
        // k1 again (with another answer), k3 new, and k3 twice within the group.
        let outcomes = try await store.commit([
            try entry(world, key: "k3", cost: "2"), try entry(world, key: "k1", cost: "9"),
            try entry(world, key: "k3", cost: "5"),
        ])
        #expect(outcomes.count == 3)
        #expect(outcomes[0] == .recorded)
        #expect(outcomes[1] == .duplicate(first))
        guard case .duplicate(let repeated) = outcomes[2] else {
            Issue.record("k3 twice was written twice")
            return
        }
        #expect(repeated.result == #"{"cost":"2"}"#)
        let usage = try await store.usage(tenantId: world.tenant.id, filter: UsageFilter(), groupBy: [])
        #expect(usage.map(\.calls) == [2])
        #expect(usage.map(\.cost) == [try Money(decimal: "3")])
        #expect(try await store.idempotencyRecord(tenantId: world.tenant.id, key: "k1")?.result == #"{"cost":"1"}"#)
        try await store.close()
    }

    @Test(arguments: StoreKind.available)
    func spend_sumsEachScopeByWindow(kind: StoreKind) async throws {
        let store = try await kind.open()
        let world = try await makeWorld(store)
        let windows = CapWindows(now, calendar: .monthlyUTC)
        let lastMonth = windows.month.start.addingTimeInterval(-10)
        let earlierToday = windows.day.start.addingTimeInterval(1)
        let yesterday = windows.day.start.addingTimeInterval(-1)
        _ = try await store.commit([
            try entry(world, key: "a", cost: "1", at: lastMonth),
            try entry(world, key: "b", cost: "0.5", at: yesterday),
            try entry(world, key: "c", cost: "0.25", at: earlierToday),
        ])
        // The customer's own windows, or the fallback for a customer not named.
        for spendWindows in [
            SpendWindows(byCustomer: [world.customer.id: windows], fallback: CapWindows(now, calendar: .monthlyUTC)),
            SpendWindows(byCustomer: ["cus_other": windows], fallback: windows),
        ] {
            let rows = try await store.spend(tenantId: world.tenant.id, windows: spendWindows)
            let agent = try #require(rows.first { $0.target == ScopeRef(.agent, world.agent.id) })
            #expect(agent.customerId == world.customer.id)
            #expect(agent.lifetime == (try Money(decimal: "1.75")))
            if windows.month.start <= yesterday {
                #expect(agent.month == (try Money(decimal: "0.75")))
            }
            #expect(agent.day == (try Money(decimal: "0.25")))
            #expect(
                rows.contains { $0.target == ScopeRef(.customer, world.customer.id) && $0.lifetime == agent.lifetime })
            #expect(rows.contains { $0.target == ScopeRef(.credential, world.credential.id) })
        }
        // A customer whose day and billing period started before all three charges (its windows reach back to
        // before last month's): everything counts in them.
        let wide = CapWindows(
            month: BillingPeriod(start: lastMonth.addingTimeInterval(-1), end: now.addingTimeInterval(1)),
            day: BillingPeriod(start: yesterday.addingTimeInterval(-1), end: now.addingTimeInterval(1)))
        let rows = try await store.spend(
            tenantId: world.tenant.id,
            windows: SpendWindows(byCustomer: [world.customer.id: wide], fallback: windows))
        let team = try #require(rows.first { $0.target == ScopeRef(.team, world.team.id) })
        #expect(team.month == (try Money(decimal: "1.75")))
        #expect(team.day == (try Money(decimal: "0.75")))
        try await store.close()
    }

    @Test(arguments: StoreKind.available)
    func usage_groupsAndFiltersWithinTheTenant(kind: StoreKind) async throws {
        let store = try await kind.open()
        let world = try await makeWorld(store)
        let other = try await makeWorld(store, name: "other")
        _ = try await store.commit([
            try entry(world, key: "1", tool: "search", cost: "0.001"),
            try entry(world, key: "2", tool: "search", cost: "0.001"),
            try entry(world, key: "3", tool: "transform", cost: "0.25"),
            try entry(other, key: "1", tool: "search", cost: "7"),
        ])
        let byTool = try await store.usage(tenantId: world.tenant.id, filter: UsageFilter(), groupBy: [.tool])
        #expect(byTool.map(\.keys) == [["search"], ["transform"]])
        #expect(byTool.map(\.calls) == [2, 1])
        #expect(byTool.map(\.cost) == [try Money(decimal: "0.002"), try Money(decimal: "0.25")])
        #expect(byTool[0].inputTokens == 20 && byTool[0].outputTokens == 10)
        #expect(byTool[0].providerCost == (try Money(decimal: "0.0002")))
        let byAgentDay = try await store.usage(
            tenantId: world.tenant.id, filter: UsageFilter(customerId: world.customer.id),
            groupBy: [.agent, .day])
        #expect(byAgentDay.map(\.keys) == [[world.agent.id, UsageQuery.dayString(PeriodCalendar.dayIndex(now))]])
        let none = try await store.usage(tenantId: world.tenant.id, filter: UsageFilter(to: now), groupBy: [.tool])
        #expect(none.isEmpty)
        try await store.close()
    }

    /// Grouped by task, each charge counts under the root of its invocation graph, resolved through the recorded
    /// charges of its own tenant only, whatever order they were recorded in; a chain that loops ends as tasks of
    /// their own, and a parent never recorded is the root.
    @Test(arguments: StoreKind.available)
    func usage_groupsByTheRootOfEachCallsTask(kind: StoreKind) async throws {
        let store = try await kind.open()
        let world = try await makeWorld(store)
        let other = try await makeWorld(store, name: "other")
        func call(_ world: World, _ key: String, parent: String?, retry: Int64 = 0) throws -> LedgerEntry {
            var entry = try entry(world, key: key, cost: "0.001")
            entry.charge.parentInvocationId = parent
            entry.charge.retryCount = retry
            entry.charge.parallel = parent != nil
            return entry
        }
        // Children first, then their parents, in two groups; another tenant reuses the keys with other parents.
        _ = try await store.commit([
            try call(world, "leaf", parent: "mid"), try call(world, "leaf-retry", parent: "mid", retry: 1),
            try call(world, "orphan", parent: "never-recorded"), try call(world, "loop-a", parent: "loop-b"),
            try call(world, "loop-b", parent: "loop-a"),
        ])
        _ = try await store.commit([
            try call(world, "mid", parent: "root"), try call(world, "root", parent: nil),
            try call(other, "mid", parent: "elsewhere"), try call(other, "root", parent: nil),
        ])
        let rows = try await store.usage(tenantId: world.tenant.id, filter: UsageFilter(), groupBy: [.task])
        #expect(rows.map(\.keys) == [["loop-a"], ["loop-b"], ["never-recorded"], ["root"]], "\(rows)")
        #expect(rows.map(\.calls) == [1, 1, 1, 4] && rows.map(\.retries) == [0, 0, 0, 1])
        #expect(rows.last?.cost == (try Money(decimal: "0.004")))
        // The other tenant's "mid" hangs under its own parent: keys never cross tenants.
        let otherRows = try await store.usage(tenantId: other.tenant.id, filter: UsageFilter(), groupBy: [.task])
        #expect(otherRows.map(\.keys) == [["elsewhere"], ["root"]], "\(otherRows)")
        try await store.close()
    }

    @Test(arguments: StoreKind.available)
    func usage_groupsByTheModelACallReported_noneUnderEmpty(kind: StoreKind) async throws {
        let store = try await kind.open()
        let world = try await makeWorld(store)
        _ = try await store.commit([
            try entry(world, key: "1", cost: "0.001", model: "claude-x"),
            try entry(world, key: "2", cost: "0.002", model: "claude-x"),
            try entry(world, key: "3", cost: "0.004", model: "gpt-y"),
            try entry(world, key: "4", cost: "0.008"),
        ])
        let byModel = try await store.usage(tenantId: world.tenant.id, filter: UsageFilter(), groupBy: [.model, .tool])
        #expect(byModel.map(\.keys) == [["", "search"], ["claude-x", "search"], ["gpt-y", "search"]])
        #expect(
            byModel.map(\.cost) == [
                try Money(decimal: "0.008"), try Money(decimal: "0.003"), try Money(decimal: "0.004"),
            ])
        #expect(byModel[1].providerCost == (try Money(decimal: "0.0002")))
        try await store.close()
    }

    @Test(arguments: StoreKind.available)
    func settings_roundTrip(kind: StoreKind) async throws {
        let store = try await kind.open()
        let key = "test-\(UUID().uuidString)"
        #expect(try await store.setting(key) == nil)
        try await store.putSetting(key, "one")
        try await store.putSetting(key, "two")
        #expect(try await store.setting(key) == "two")
        try await store.close()
    }

    @Test func sqlite_committedGroupsSurviveReopening() async throws {
        let path = StoreKind.temporarySQLitePath()
        var store: any TollgateStore = try SQLiteStore(path: path)
        let world = try await makeWorld(store)
        _ = try await store.commit([try entry(world, key: "durable", cost: "0.5")])
        try await store.close()
        store = try SQLiteStore(path: path)
        #expect(try await store.idempotencyRecord(tenantId: world.tenant.id, key: "durable") != nil)
        #expect(try await store.loadTenant(world.tenant.id)?.agents == [world.agent])
        try await store.close()
    }

    @Test(.enabled(if: StoreKind.postgresURL != nil, "set TOLLGATE_TEST_POSTGRES_URL to run PostgreSQL tests"))
    func postgres_migrationsAreIdempotentAcrossOpens() async throws {
        let first = try await StoreKind.postgres.open()
        let second = try await StoreKind.postgres.open()
        try await first.close()
        try await second.close()
    }
}
