import TollgateCore
import TollgateJSON
import TollgateRuntime
import TollgateWire

/// A tenant's operator credentials (`operators.issue | list | revoke | rotate`, scope `operator`: only a
/// credential that may do everything can make another); its agents and their credentials as lists, and their
/// client secrets' rotation (`agents.list`, `credentials.list | rotate`); and an agent's delegation to a sub-agent
/// (`credentials.delegate`, scope `credentials:delegate`).
enum CredentialMethods {
    static func register(in router: inout Router) {
        router.tenantOperator(.operatorsIssue, scopes: OperatorScope.all) { params, op in
            // No default: what a new operator credential may do is always said.
            guard let scopes = try params.optionalStrings("scopes") else {
                throw WireError.invalidParams(field: "scopes", expected: "an array of operator scopes")
            }
            return try await op.tenant.issueOperator(
                name: try params.string("name", lengthMax: HierarchyMethods.nameBytesMax), scopes: scopes,
                ttlSeconds: try params.optionalInt("ttlSeconds", range: 1...TenantActor.operatorTTLSecondsMax))
        }

        router.tenantOperator(.operatorsList, scopes: OperatorScope.all) { _, op in
            await op.tenant.operatorCredentials()
        }

        router.tenantOperator(.operatorsRevoke, scopes: OperatorScope.all) { params, op in
            try await op.tenant.revokeOperator(
                try params.string("credentialId"), call: try Keys.call(params, .operatorsRevoke, op.request))
        }

        router.tenantOperator(.operatorsRotate, scopes: OperatorScope.all) { params, op in
            try await op.tenant.rotateOperator(
                try params.string("credentialId"),
                overlapSeconds: try params.optionalInt(
                    "overlapSeconds", range: 0...TenantActor.rotationOverlapSecondsMax) ?? 0)
        }

        router.tenantOperator(.agentsList, scopes: OperatorScope.agentsWrite, OperatorScope.billingRead) { params, op in
            try await op.tenant.agentList(teamId: try params.optionalString("teamId"))
        }

        router.tenantOperator(.credentialsList, scopes: OperatorScope.agentsWrite) { params, op in
            try await op.tenant.agentCredentials(agentId: try params.optionalString("agentId"))
        }

        router.agent(.credentialsDelegate, scopes: AgentScope.credentialsDelegate) { params, agent in
            guard let spendLimit = try params.optionalMoney("spendLimit") else {
                throw WireError.invalidParams(field: "spendLimit", expected: "a decimal amount")
            }
            guard let scopes = try params.optionalStrings("scopes") else {
                throw WireError.invalidParams(field: "scopes", expected: "an array of scopes")
            }
            return try await agent.tenant.delegateCredential(
                from: agent.credentialId, scopes: scopes,
                ttlSeconds: try params.int(
                    "ttlSeconds", range: 1...Int64(agent.request.configuration.runtime.credentialTTLSecondsMax)),
                spendLimit: spendLimit, label: try params.optionalString("label", lengthMax: 200))
        }

        router.tenantOperator(.credentialsRotate, scopes: OperatorScope.agentsWrite) { params, op in
            try await op.tenant.rotateClientSecret(
                agentId: try params.string("agentId"),
                overlapSeconds: try params.optionalInt(
                    "overlapSeconds", range: 0...TenantActor.rotationOverlapSecondsMax) ?? 0)
        }
    }
}
