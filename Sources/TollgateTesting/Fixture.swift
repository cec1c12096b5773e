import TollgateClient
import TollgateCore
import TollgateJSON

/// A tenant with one customer, team and agent, a `per_tool` plan and a subscription: the smallest world in
/// which an agent can pay for a call. Built over the wire, as an operator would.
public struct Fixture: Sendable {
    public var tenantId: String
    public var operatorToken: String
    public var customerId: String
    public var teamId: String
    public var agentId: String
    public var credentialId: String
    public var agentToken: String
    public var planId: String
    public var subscriptionId: String

    /// The plan every fixture subscribes to: `search` 0.001, `transform` 0.25, anything else 0.002 (USD).
    public static let searchPlan: JSONValue = [
        "name": "search", "currency": "USD",
        "charges": [["strategy": "per_tool", "rates": ["search": "0.001", "transform": "0.25", "*": "0.002"]]],
    ]

    /// `plan` is the document the customer subscribes to (the `search` plan unless given).
    public static func make(on server: TestServer, name: String = "acme", plan: JSONValue = searchPlan) async throws
        -> Fixture
    {
        let root = try await server.connect(token: TestServer.rootToken)
        let tenant = try await root.call("tenants.create", ["name": .string(name)])
        await root.close()
        let operatorToken = tenant["operatorToken"]!.stringValue!
        let op = try await server.connect(token: operatorToken)
        let customerId = try await op.call("customers.create", ["name": "Customer"])["customerId"]!.stringValue!
        let teamId = try await op.call("teams.create", ["customerId": .string(customerId), "name": "Team"])["teamId"]!
            .stringValue!
        let agentId = try await op.call("agents.create", ["teamId": .string(teamId), "name": "Agent"])["agentId"]!
            .stringValue!
        let planId = try await op.call("plans.put", plan)["planId"]!.stringValue!
        let subscriptionId = try await op.call(
            "subscriptions.create",
            [
                "customerId": .string(customerId),
                "planId": .string(planId),
            ])["subscriptionId"]!.stringValue!
        let credential = try await op.call(
            "credentials.issue",
            [
                "agentId": .string(agentId), "scopes": ["meter:write"],
                "ttlSeconds": 86_400,
            ])
        await op.close()
        return Fixture(
            tenantId: tenant["tenantId"]!.stringValue!, operatorToken: operatorToken, customerId: customerId,
            teamId: teamId, agentId: agentId, credentialId: credential["credentialId"]!.stringValue!,
            agentToken: credential["token"]!.stringValue!, planId: planId,
            subscriptionId: subscriptionId)
    }
}
