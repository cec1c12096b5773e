import TollgateCore
import TollgateJSON
import TollgateRuntime
import TollgateStorage
import TollgateWire

/// Sessions: `session.open` (agents), `session.get` and `session.close` (agents, their own sessions; operators,
/// any of the tenant's), and the operator's `sessions.list` and `sessions.configure`.
enum SessionMethods {
    static let metadataBytesMax = 4096
    static let listMax: Int64 = 1000

    static func register(in router: inout Router) {
        router.agent(.sessionOpen, scopes: AgentScope.sessionWrite, AgentScope.meterWrite) { params, agent in
            let id =
                try params.optionalString("sessionId", lengthMax: agent.request.idBytesMax)
                ?? Identifiers.make(.session)
            var metadata: String?
            if let value = params.object["metadata"], value != .null {
                guard case .object = value else { throw TollgateError.validation(field: "metadata", rule: "an object") }
                let text = JSONCodec.string(value)
                guard text.utf8.count <= metadataBytesMax else {
                    throw TollgateError.validation(field: "metadata", rule: "at most \(metadataBytesMax) bytes of JSON")
                }
                metadata = text
            }
            return try await agent.tenant.openSession(
                id, metadata: metadata, call: try Keys.call(params, .sessionOpen, agent.request),
                credentialId: agent.credentialId)
        }

        router.agentOrOperator(
            .sessionGet, agent: [AgentScope.sessionWrite, AgentScope.meterWrite, AgentScope.usageRead],
            operator: [OperatorScope.billingRead]
        ) { params, caller in
            try await caller.tenant.sessionInfo(
                try params.string("sessionId", lengthMax: caller.request.idBytesMax), as: caller.viewer)
        }

        router.agentOrOperator(
            .sessionClose, agent: [AgentScope.sessionWrite, AgentScope.meterWrite],
            operator: [OperatorScope.agentsWrite]
        ) { params, caller in
            let outcome: SessionOutcome
            switch try params.optionalString("outcome") {
            case nil, "COMPLETED"?: outcome = .completed
            case "FAILED"?: outcome = .failed
            default: throw TollgateError.validation(field: "outcome", rule: "COMPLETED or FAILED")
            }
            return try await caller.tenant.closeSession(
                try params.string("sessionId", lengthMax: caller.request.idBytesMax), outcome: outcome,
                as: caller.viewer,
                call: try Keys.call(params, .sessionClose, caller.request))
        }

        router.tenantOperator(.sessionsList, scopes: OperatorScope.billingRead) { params, op in
            let state = try params.optionalString("state") ?? "open"
            guard state == "open" || state == "all" else {
                throw TollgateError.validation(field: "state", rule: "open or all")
            }
            let limit = Int(try params.optionalInt("limit", range: 1...listMax) ?? 100)
            let sessions = try await op.tenant.listSessions(state == "open" ? .open : .all, limit: limit)
            return JSONValue.object(["sessions": .array(sessions.map(\.json))])
        }

        router.tenantOperator(.sessionsConfigure, scopes: OperatorScope.agentsWrite) { params, op in
            let day: Int64 = 86_400_000
            return try await op.tenant.configureSessions(
                idleAfterMs: try params.optionalInt("idleAfterMs", range: 1000...(30 * day)),
                sessionTimeoutMs: try params.optionalInt("sessionTimeoutMs", range: 1000...(30 * day)),
                call: try Keys.call(params, .sessionsConfigure, op.request))
        }
    }
}
