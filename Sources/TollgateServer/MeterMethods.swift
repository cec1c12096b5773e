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
            guard case .agent(let tenantId, _, let credentialId, _)? = context.connection.currentPrincipal else {
                throw TollgateError.forbidden("meter methods need an agent credential")
            }
            let key = try params.string("idempotencyKey", lengthMax: 1024)
            guard IdempotencyKey.isValid(key) else {
                throw TollgateError.validation(field: "idempotencyKey", rule: "1 to 128 printable ASCII characters")
            }
            let usage = try params.nested("usage")
            let event = RatedEvent(
                tool: try params.string("tool", lengthMax: toolBytesMax),
                quantity: try params.optionalInt("quantity", range: 1...countMax) ?? 1,
                inputTokens: try usage?.optionalInt("inputTokens", range: 0...countMax) ?? 0,
                outputTokens: try usage?.optionalInt("outputTokens", range: 0...countMax) ?? 0,
                reasoningTokens: try usage?.optionalInt("reasoningTokens", range: 0...countMax) ?? 0,
                durationMs: try usage?.optionalInt("durationMs", range: 0...countMax) ?? 0,
                providerCost: try usage?.optionalMoney("providerCost") ?? .zero)
            let request = MeterRequest(
                event: event, idempotencyKey: key,
                sessionId: try params.optionalString("sessionId", lengthMax: 128) ?? context.connection.defaultSessionId,
                status: try usage?.optionalString("status", lengthMax: 64), params: .object(params.object))
            return try await context.supervisor.tenant(tenantId).verify(request, credentialId: credentialId)
        }
    }
}
