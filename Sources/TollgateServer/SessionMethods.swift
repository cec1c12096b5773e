import TollgateCore
import TollgateRuntime
import TollgateStorage
import TollgateWire

/// `session.open`, `session.get`, `session.close` (agents: their own sessions; operators: any of the
/// tenant's), and the operator's `sessions.list` and `sessions.configure`.
enum SessionMethods {
    static let metadataBytesMax = 4096
    static let listMax: Int64 = 1000

    /// The tenant, and the agent the caller is (nil for operators, who may act on any session).
    static func caller(_ params: Params, _ context: RequestContext) async throws -> (TenantActor, agentId: String?) {
        if case .agent? = context.connection.currentPrincipal {
            let (tenant, agentId) = try await meteringAgent(context)
            return (tenant, agentId)
        }
        return (try await OperatorMethods.operatorTenant(params, context), nil)
    }

    /// The tenant and agent of a caller holding a usable `meter:write` credential.
    static func meteringAgent(_ context: RequestContext) async throws -> (TenantActor, agentId: String) {
        guard case .agent(let tenantId, let agentId, let credentialId, _)? = context.connection.currentPrincipal else {
            throw TollgateError.forbidden("sessions are opened by agents")
        }
        let tenant = try await context.supervisor.tenant(tenantId)
        _ = try await tenant.meterCredential(credentialId)
        return (tenant, agentId)
    }

    static func register(in router: inout Router) {
        router.register("session.open") { params, context in
            let (tenant, agentId) = try await meteringAgent(context)
            let id = try params.optionalString("sessionId", lengthMax: 128) ?? Identifiers.make(.session)
            var metadata: String?
            if let value = params.object["metadata"], value != .null {
                guard case .object = value else { throw TollgateError.validation(field: "metadata", rule: "an object") }
                let text = JSONCodec.string(value)
                guard text.utf8.count <= metadataBytesMax else {
                    throw TollgateError.validation(field: "metadata", rule: "at most \(metadataBytesMax) bytes of JSON")
                }
                metadata = text
            }
            return try await tenant.openSession(
                id, agentId: agentId, metadata: metadata,
                call: try MeterMethods.keyedCall(params, .sessionOpen, context))
        }

        router.register("session.get") { params, context in
            let (tenant, agentId) = try await caller(params, context)
            return try await tenant.sessionInfo(try params.string("sessionId", lengthMax: 128), agentId: agentId)
        }

        router.register("session.close") { params, context in
            let (tenant, agentId) = try await caller(params, context)
            let outcome: SessionOutcome
            switch try params.optionalString("outcome") {
            case nil, "COMPLETED"?: outcome = .completed
            case "FAILED"?: outcome = .failed
            default: throw TollgateError.validation(field: "outcome", rule: "COMPLETED or FAILED")
            }
            return try await tenant.closeSession(
                try params.string("sessionId", lengthMax: 128), outcome: outcome, agentId: agentId,
                call: try MeterMethods.keyedCall(params, .sessionClose, context))
        }

        router.register("sessions.list") { params, context in
            let tenant = try await OperatorMethods.operatorTenant(params, context)
            let state = try params.optionalString("state") ?? "open"
            guard state == "open" || state == "all" else {
                throw TollgateError.validation(field: "state", rule: "open or all")
            }
            let limit = Int(try params.optionalInt("limit", range: 1...listMax) ?? 100)
            return ["sessions": .array(try await tenant.listSessions(state == "open" ? .open : .all, limit: limit))]
        }

        router.register("sessions.configure") { params, context in
            let tenant = try await OperatorMethods.operatorTenant(params, context)
            let day: Int64 = 86_400_000
            return try await tenant.configureSessions(
                idleAfterMs: try params.optionalInt("idleAfterMs", range: 1000...(30 * day)),
                sessionTimeoutMs: try params.optionalInt("sessionTimeoutMs", range: 1000...(30 * day)),
                call: try MeterMethods.keyedCall(params, .sessionsConfigure, context))
        }
    }
}

/// `alerts.subscribe` (push `alert` notifications of some kinds on this connection), `alerts.list`, and the
/// operator's `caps.list`.
enum AlertMethods {
    static func register(in router: inout Router) {
        router.register("alerts.subscribe") { params, context in
            let tenant = try await OperatorMethods.operatorTenant(params, context)
            let kinds = try params.optionalStrings("kinds") ?? AlertHub.kinds
            for kind in kinds where !AlertHub.kinds.contains(kind) {
                throw TollgateError.validation(
                    field: "kinds", rule: "each one of: \(AlertHub.kinds.joined(separator: ", "))")
            }
            guard let send = context.connection.notify.withLock({ $0 }) else {
                throw TollgateError.unavailable("this connection is closing")
            }
            let id = context.supervisor.services.alerts.subscribe(
                tenantId: tenant.tenantId, kinds: Set(kinds), send: send)
            context.connection.alertSubscriptions.withLock { $0.append(id) }
            return ["subscribed": .array(kinds.sorted().map(JSONValue.string))]
        }

        router.register("alerts.list") { params, context in
            let tenant = try await OperatorMethods.operatorTenant(params, context)
            let kinds = try params.optionalStrings("kinds")
            for kind in kinds ?? [] where !AlertHub.kinds.contains(kind) {
                throw TollgateError.validation(
                    field: "kinds", rule: "each one of: \(AlertHub.kinds.joined(separator: ", "))")
            }
            let limit = Int(try params.optionalInt("limit", range: 1...1000) ?? 100)
            return [
                "alerts": .array(try await tenant.listAlerts(kinds: kinds?.isEmpty == true ? nil : kinds, limit: limit))
            ]
        }

        router.register("caps.list") { params, context in
            let tenant = try await OperatorMethods.operatorTenant(params, context)
            return ["caps": .array(await tenant.listCaps())]
        }
    }
}
