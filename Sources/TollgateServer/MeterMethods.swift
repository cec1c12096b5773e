import TollgateCore
import TollgateIngest
import TollgatePricing
import TollgateRuntime
import TollgateWire

/// Metering: `meter.verify` (the hot path), two-phase `meter.authorize`, `meter.commit`, `meter.release`, and
/// `meter.quote`, which prices without recording.
enum MeterMethods {
    static let toolBytesMax = 256
    /// Largest per-call quantity and token counts: large enough for any real call, small enough that a
    /// price × quantity stays far from overflow for sane rates.
    static let countMax: Int64 = 1_000_000_000_000

    static func register(in router: inout Router) {
        router.agent(.meterVerify, scopes: AgentScope.meterWrite) { params, agent in
            let key = try Keys.key(params, agent.request)
            try Self.checkSource(params)
            let usage = try params.nested("usage")
            let event = try Self.event(
                tool: try params.string("tool", lengthMax: toolBytesMax),
                quantity: try params.optionalInt("quantity", range: 1...countMax) ?? 1, usage: usage)
            var request = MeterRequest(
                event: event, idempotencyKey: key, sessionId: try sessionId(params, agent.request),
                status: try usage?.optionalString("status", lengthMax: 64), params: .object(params.object))
            request.product = try product(params, agent.request)
            let graph = try Self.graph(params, key: key)
            request.parentInvocationId = graph.parentInvocationId
            request.retryCount = graph.retryCount
            request.parallel = graph.parallel
            return try await agent.tenant.verify(request, credentialId: agent.credentialId)
        }

        router.agent(.meterAuthorize, scopes: AgentScope.meterWrite) { params, agent in
            let key = try Keys.key(params, agent.request)
            try Self.checkSource(params)
            let tool = try params.string("tool", lengthMax: toolBytesMax)
            // Without an estimate (nor a quantity), the product catalog's estimate for the tool is held.
            let given = params.has("estimate") || params.has("quantity")
            let estimate =
                given
                ? try Self.event(
                    tool: tool, quantity: try params.optionalInt("quantity", range: 1...countMax) ?? 1,
                    usage: try params.nested("estimate")) : nil
            return try await agent.tenant.authorize(
                tool: tool, idempotencyKey: key, sessionId: try sessionId(params, agent.request), estimate: estimate,
                ttlMs: try params.optionalInt("ttlMs", range: 1000...86_400_000),
                graph: try Self.graph(params, key: key), product: try product(params, agent.request),
                params: .object(params.object), credentialId: agent.credentialId)
        }

        router.agent(.meterCommit, scopes: AgentScope.meterWrite) { params, agent in
            try Self.checkSource(params)
            let usage = try params.nested("usage")
            let event = try Self.event(
                tool: "", quantity: try params.optionalInt("quantity", range: 1...countMax) ?? 1, usage: usage)
            return try await agent.tenant.commitReservation(
                try params.string("reservationId", lengthMax: agent.request.idBytesMax), usage: event,
                status: try usage?.optionalString("status", lengthMax: 64), params: .object(params.object),
                credentialId: agent.credentialId)
        }

        router.agent(.meterRelease, scopes: AgentScope.meterWrite) { params, agent in
            try await agent.tenant.releaseReservation(
                try params.string("reservationId", lengthMax: agent.request.idBytesMax),
                call: try Keys.call(params, .meterRelease, agent.request), credentialId: agent.credentialId)
        }

        registerQuote(in: &router)
    }

    /// Most tools one `meter.quote` prices.
    static let quoteToolsMax = 100

    static func registerQuote(in router: inout Router) {
        router.agent(.meterQuote, scopes: AgentScope.meterWrite) { params, agent in
            guard let tools = try params.optionalStrings("tools", countMax: quoteToolsMax), !tools.isEmpty else {
                throw TollgateError.validation(field: "tools", rule: "1 to \(quoteToolsMax) tool names")
            }
            for (index, tool) in tools.enumerated() where tool.isEmpty || tool.utf8.count > toolBytesMax {
                throw TollgateError.validation(field: "tools[\(index)]", rule: "1 to \(toolBytesMax) bytes")
            }
            let usage = try Self.event(
                tool: "", quantity: try params.optionalInt("quantity", range: 1...countMax) ?? 1,
                usage: try params.nested("usage"))
            return try await agent.tenant.quote(
                tools: tools, sessionId: try sessionId(params, agent.request), usage: usage,
                product: try product(params, agent.request), credentialId: agent.credentialId)
        }
    }

    /// The call's place in an agent's task: `parentInvocationId` (another call's key), `retryCount` (0–1000),
    /// `parallel`.
    static func graph(_ params: Params, key: String) throws -> UsageEvent.Graph {
        let parent = try params.optionalString("parentInvocationId", lengthMax: 128)
        guard parent != key else {
            throw TollgateError.validation(field: "parentInvocationId", rule: "another call's key, not the call's own")
        }
        return UsageEvent.Graph(
            parentInvocationId: parent, retryCount: try params.optionalInt("retryCount", range: 0...1000) ?? 0,
            parallel: try params.optionalBool("parallel") ?? false)
    }

    /// `source`: who made the call (`rpc`, `sdk`, `proxy`, `upload`), kept with it as an event (`events.get`).
    static func checkSource(_ params: Params) throws {
        guard let source = try params.optionalString("source") else { return }
        guard EventSource(rawValue: source) != nil else {
            throw TollgateError.validation(
                field: "source", rule: EventSource.allCases.map(\.rawValue).joined(separator: ", "))
        }
    }

    /// `product`: the product whose subscription prices the call, by id or name.
    static func product(_ params: Params, _ context: RequestContext) throws -> String? {
        try params.optionalString("product", lengthMax: max(context.idBytesMax, HierarchyMethods.nameBytesMax))
    }

    /// The call's session: the one it names, or the one the server named for this connection.
    static func sessionId(_ params: Params, _ context: RequestContext) throws -> String {
        try params.optionalString("sessionId", lengthMax: context.idBytesMax) ?? context.connection.defaultSessionId
    }

    /// The call's usage as rating sees it; `usage` (or `estimate`) names its fields in errors.
    static func event(tool: String, quantity: Int64, usage: NestedParams?) throws -> RatedEvent {
        RatedEvent(
            tool: tool, quantity: quantity,
            inputTokens: try usage?.optionalInt("inputTokens", range: 0...countMax) ?? 0,
            outputTokens: try usage?.optionalInt("outputTokens", range: 0...countMax) ?? 0,
            reasoningTokens: try usage?.optionalInt("reasoningTokens", range: 0...countMax) ?? 0,
            durationMs: try usage?.optionalInt("durationMs", range: 0...countMax) ?? 0,
            providerCost: try usage?.optionalMoney("providerCost") ?? .zero,
            model: try usage?.optionalString("model", lengthMax: modelBytesMax))
    }

    /// The longest model name a call may report (`usage.model`).
    static let modelBytesMax = 128
}
