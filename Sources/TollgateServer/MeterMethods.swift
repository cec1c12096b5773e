import TollgateCore
import TollgatePricing
import TollgateRuntime
import TollgateWire

/// `meter.verify`, the hot path.
enum MeterMethods {
    static let toolBytesMax = 256
    /// Largest per-call quantity and token counts: large enough for any real call, small enough that a
    /// price × quantity stays far from overflow for sane rates.
    static let countMax: Int64 = 1_000_000_000_000

    static func register(in router: inout Router) {
        router.register("meter.verify") { params, context in
            let (tenant, credentialId) = try await agentTenant(context)
            let key = try idempotencyKey(params)
            let usage = try params.nested("usage")
            let event = try Self.event(
                tool: try params.string("tool", lengthMax: toolBytesMax),
                quantity: try params.optionalInt("quantity", range: 1...countMax) ?? 1, usage: usage)
            let request = MeterRequest(
                event: event, idempotencyKey: key,
                sessionId: try sessionId(params, context),
                status: try usage?.optionalString("status", lengthMax: 64), params: .object(params.object))
            return try await tenant.verify(request, credentialId: credentialId)
        }

        router.register("meter.authorize") { params, context in
            let (tenant, credentialId) = try await agentTenant(context)
            let key = try idempotencyKey(params)
            let tool = try params.string("tool", lengthMax: toolBytesMax)
            let estimate = try Self.event(
                tool: tool, quantity: try params.optionalInt("quantity", range: 1...countMax) ?? 1,
                usage: try params.nested("estimate"))
            return try await tenant.authorize(
                tool: tool, idempotencyKey: key,
                sessionId: try sessionId(params, context),
                estimate: estimate, ttlMs: try params.optionalInt("ttlMs", range: 1000...86_400_000),
                params: .object(params.object), credentialId: credentialId)
        }

        router.register("meter.commit") { params, context in
            let (tenant, credentialId) = try await agentTenant(context)
            let usage = try params.nested("usage")
            let event = try Self.event(
                tool: "", quantity: try params.optionalInt("quantity", range: 1...countMax) ?? 1, usage: usage)
            return try await tenant.commitReservation(
                try params.string("reservationId", lengthMax: 128), usage: event,
                status: try usage?.optionalString("status", lengthMax: 64), params: .object(params.object),
                credentialId: credentialId)
        }

        router.register("meter.release") { params, context in
            let (tenant, credentialId) = try await agentTenant(context)
            return try await tenant.releaseReservation(
                try params.string("reservationId", lengthMax: 128),
                call: try keyedCall(params, .meterRelease, context), credentialId: credentialId)
        }
    }

    static func idempotencyKey(_ params: Params) throws -> String {
        let key = try params.string("idempotencyKey", lengthMax: 1024)
        guard IdempotencyKey.isValid(key) else {
            throw TollgateError.validation(field: "idempotencyKey", rule: "1 to 128 printable ASCII characters")
        }
        return key
    }

    /// The call under the idempotency rule when its params carry an `idempotencyKey` (optional for every
    /// writing method but `meter.verify` and `meter.authorize`), sent by the connection's agent or operator.
    static func keyedCall(_ params: Params, _ method: WriteMethod, _ context: RequestContext) throws -> KeyedCall? {
        guard params.object["idempotencyKey"] != nil else { return nil }
        let principal: String
        switch context.connection.currentPrincipal {
        case .agent(_, let agentId, _, _)?: principal = agentId
        default: principal = KeyedCall.operatorPrincipal
        }
        return KeyedCall(
            key: try idempotencyKey(params), method: method, params: .object(params.object), principal: principal)
    }

    /// The call's session: the one it names, or the one the server named for this connection.
    static func sessionId(_ params: Params, _ context: RequestContext) throws -> String {
        try params.optionalString("sessionId", lengthMax: 128) ?? context.connection.defaultSessionId
    }

    static func agentTenant(_ context: RequestContext) async throws -> (TenantActor, credentialId: String) {
        guard case .agent(let tenantId, _, let credentialId, _)? = context.connection.currentPrincipal else {
            throw TollgateError.forbidden("meter methods need an agent credential")
        }
        return (try await context.supervisor.tenant(tenantId), credentialId)
    }

    /// The call's usage as rating sees it; `usage` (or `estimate`) names its fields in errors.
    static func event(tool: String, quantity: Int64, usage: NestedParams?) throws -> RatedEvent {
        RatedEvent(
            tool: tool, quantity: quantity,
            inputTokens: try usage?.optionalInt("inputTokens", range: 0...countMax) ?? 0,
            outputTokens: try usage?.optionalInt("outputTokens", range: 0...countMax) ?? 0,
            reasoningTokens: try usage?.optionalInt("reasoningTokens", range: 0...countMax) ?? 0,
            durationMs: try usage?.optionalInt("durationMs", range: 0...countMax) ?? 0,
            providerCost: try usage?.optionalMoney("providerCost") ?? .zero)
    }
}
