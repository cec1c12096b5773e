import TollgateCore
import TollgateJSON
import TollgateRuntime
import TollgateWire

/// The tenant's hierarchy: `customers.create`, `teams.create`, `agents.create`, and the agents' credentials
/// (`credentials.issue`, `credentials.revoke`).
enum HierarchyMethods {
    static let nameBytesMax = 256

    static func register(in router: inout Router) {
        router.tenantOperator("customers.create") { params, op in
            try await op.tenant.createCustomer(
                name: try params.string("name", lengthMax: nameBytesMax),
                externalId: try params.optionalString("externalId"),
                call: try Keys.call(params, .customersCreate, op.request))
        }

        router.tenantOperator("teams.create") { params, op in
            try await op.tenant.createTeam(
                customerId: try params.string("customerId"),
                name: try params.string("name", lengthMax: nameBytesMax),
                call: try Keys.call(params, .teamsCreate, op.request))
        }

        router.tenantOperator("agents.create") { params, op in
            let created = try await op.tenant.createAgent(
                teamId: try params.string("teamId"),
                name: try params.string("name", lengthMax: nameBytesMax),
                agentType: try params.optionalString("agentType"))
            return [
                "agentId": .string(created.agent.id), "teamId": .string(created.agent.teamId),
                "clientId": .string(created.agent.clientId), "clientSecret": .string(created.clientSecret),
            ]
        }

        router.tenantOperator("credentials.issue") { params, op in
            let limit = Int64(op.request.configuration.runtime.credentialTTLSecondsMax)
            let issued = try await op.tenant.issueCredential(
                agentId: try params.string("agentId"),
                scopes: try params.optionalStrings("scopes") ?? [AgentScope.meterWrite],
                ttlSeconds: try params.int("ttlSeconds", range: 1...limit),
                spendLimit: try params.optionalMoney("spendLimit"))
            var result: [String: JSONValue] = [
                "credentialId": .string(issued.credential.id), "agentId": .string(issued.credential.agentId),
                "token": .string(issued.token), "expiresAt": .string(Timestamp.format(issued.credential.expiresAt)),
                "scopes": .array(issued.credential.scopes.map(JSONValue.string)),
            ]
            if let spendLimit = issued.credential.spendLimit {
                result["spendLimit"] = .string(spendLimit.decimalString)
            }
            return .object(result)
        }

        router.tenantOperator("credentials.revoke") { params, op in
            try await op.tenant.revokeCredential(
                try params.string("credentialId"), call: try Keys.call(params, .credentialsRevoke, op.request))
        }
    }
}
