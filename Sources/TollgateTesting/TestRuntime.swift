import Foundation
import Logging
import TollgateCore
import TollgateJSON
import TollgatePricing
import TollgateRuntime
import TollgateStorage
import TollgateStrategies

/// A Tollgate runtime in process, without a listener: the supervisor, tenant actors and ledger writer over a
/// store and a clock. Most behaviour tests need nothing more, and so run without a socket or JSON on the wire
/// (as hummingbird's `.router` test mode does); `TestServer` is for what must go over TCP.
///
/// `TestRuntime.with` always shuts the runtime down — the ledger writer drained, the store closed — also when
/// its body throws or a `#require` fails.
public struct TestRuntime: Sendable {
    public let supervisor: Supervisor
    public var services: RuntimeServices { supervisor.services }
    public var store: any TollgateStore { services.store }

    /// Runs `body` with a runtime over `store` (a new in-memory store by default), reading `clock`.
    public static func with<T: Sendable>(
        store: (any TollgateStore)? = nil, clock: any WallClock = SystemWallClock(),
        configuration: RuntimeConfiguration = RuntimeConfiguration(), _ body: (TestRuntime) async throws -> T
    ) async throws -> T {
        let store = store ?? InMemoryStore()
        var logger = Logger(label: "tollgate.test-runtime")
        logger.logLevel = .critical
        let ledger = LedgerWriter(store: store, logger: logger)
        let writer = Task { try await ledger.run() }
        let services = RuntimeServices(
            store: store, ledger: ledger, registry: .builtIn, clock: clock, logger: logger)
        let runtime = TestRuntime(
            supervisor: Supervisor(
                services: services, rootTokenHash: Secrets.hash("unused"), configuration: configuration))
        func shutdown() async {
            writer.cancel()
            _ = await writer.result
            try? await store.close()
        }
        do {
            let result = try await body(runtime)
            await shutdown()
            return result
        } catch {
            await shutdown()
            throw error
        }
    }

    /// A tenant with one customer, team and agent, a credential that may meter, and a subscription to `plan`
    /// (`Fixture.searchPlan` unless given): the smallest world in which an agent can pay for a call.
    public func makeTenant(plan: JSONValue = Fixture.searchPlan) async throws -> TestTenant {
        let tenantId = try await supervisor.createTenant(name: "acme").tenant.id
        let actor = try await supervisor.tenant(tenantId)
        let customerId = try await actor.createCustomer(name: "Customer", externalId: nil, call: nil).value!
            .customer.id
        let teamId = try await actor.createTeam(customerId: customerId, name: "Team", call: nil).value!.team.id
        let agent = try await actor.createAgent(teamId: teamId, name: "Agent", agentType: nil).agent
        let planId = try await actor.putPlan(plan, call: nil).value!.planId
        let subscriptionId = try await actor.createSubscription(
            customerId: customerId, planId: planId, version: nil, startsAt: nil, call: nil
        ).value!.subscription.id
        let credential = try await actor.issueCredential(
            agentId: agent.id, scopes: [AgentScope.meterWrite], ttlSeconds: 86_400, spendLimit: nil
        ).credential
        return TestTenant(
            actor: actor, tenantId: tenantId, customerId: customerId, teamId: teamId, agentId: agent.id,
            credentialId: credential.id, planId: planId, subscriptionId: subscriptionId)
    }
}

/// A tenant made by `TestRuntime.makeTenant`, with its actor.
public struct TestTenant: Sendable {
    public let actor: TenantActor
    public let tenantId: String
    public let customerId: String
    public let teamId: String
    public let agentId: String
    public let credentialId: String
    public let planId: String
    public let subscriptionId: String

    /// `meter.verify` of `quantity` calls of `tool` under `key`, in `session`, as the tenant's agent.
    public func verify(_ key: String, tool: String = "search", quantity: Int64 = 1, session: String = "ses_1")
        async throws -> Answer<Receipt>
    {
        let params: JSONValue = [
            "tool": .string(tool), "idempotencyKey": .string(key), "quantity": .integer(quantity),
            "sessionId": .string(session),
        ]
        return try await actor.verify(
            MeterRequest(
                event: RatedEvent(tool: tool, quantity: quantity), idempotencyKey: key, sessionId: session,
                params: params),
            credentialId: credentialId)
    }
}
