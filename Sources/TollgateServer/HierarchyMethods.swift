import TollgateCore
import TollgateJSON
import TollgateRuntime
import TollgateWire

/// The tenant's hierarchy: `customers.create`, `teams.create`, `agents.create`, and the agents' credentials
/// (`credentials.issue`, `credentials.revoke`).
enum HierarchyMethods {
    static let nameBytesMax = 256

    static func register(in router: inout Router) {
        router.tenantOperator(.customersCreate, scopes: OperatorScope.billingWrite) { params, op in
            try await op.tenant.createCustomer(
                name: try params.string("name", lengthMax: nameBytesMax),
                externalId: try params.optionalString("externalId"),
                timeZone: try params.optionalString("timeZone", lengthMax: 64) ?? "UTC",
                taxRate: try params.optionalMoney("taxRate") ?? .zero,
                blockAtZeroCredit: try params.optionalBool("blockAtZeroCredit") ?? false,
                call: try Keys.call(params, .customersCreate, op.request))
        }

        router.tenantOperator(.teamsCreate, scopes: OperatorScope.agentsWrite) { params, op in
            try await op.tenant.createTeam(
                customerId: try params.string("customerId"),
                name: try params.string("name", lengthMax: nameBytesMax),
                call: try Keys.call(params, .teamsCreate, op.request))
        }

        router.tenantOperator(.agentsCreate, scopes: OperatorScope.agentsWrite) { params, op in
            try await op.tenant.createAgent(
                teamId: try params.string("teamId"),
                name: try params.string("name", lengthMax: nameBytesMax),
                agentType: try params.optionalString("agentType"))
        }

        router.tenantOperator(.credentialsIssue, scopes: OperatorScope.agentsWrite) { params, op in
            let limit = Int64(op.request.configuration.runtime.credentialTTLSecondsMax)
            return try await op.tenant.issueCredential(
                agentId: try params.string("agentId"),
                scopes: try params.optionalStrings("scopes") ?? [AgentScope.meterWrite],
                ttlSeconds: try params.int("ttlSeconds", range: 1...limit),
                spendLimit: try params.optionalMoney("spendLimit"))
        }

        router.tenantOperator(.credentialsRevoke, scopes: OperatorScope.agentsWrite) { params, op in
            try await op.tenant.revokeCredential(
                try params.string("credentialId"), call: try Keys.call(params, .credentialsRevoke, op.request))
        }
    }
}
