import TollgateCore

/// What rating needs to know of one metered call.
public struct RatedEvent: Sendable, Hashable {
    public var tool: String
    /// How many units of the tool this call used (default 1); counts as that many calls.
    public var quantity: Int64
    public var inputTokens: Int64
    public var outputTokens: Int64
    public var reasoningTokens: Int64
    public var durationMs: Int64
    public var providerCost: Money
    /// The agent that made the call (committed allocations are per agent).
    public var agentId: String
    /// The session the call belongs to; a call without one is a session of its own.
    public var sessionId: String?
    /// The caller's outcome (`usage.status`). Anything but absent or `SUCCESS` counts as an error.
    public var status: String?
    /// The model the call used, as the caller reported it (`usage.model`): recorded with the charge, so that
    /// usage and provider cost can be read per model. No strategy prices by it.
    public var model: String?

    public init(
        tool: String, quantity: Int64 = 1, inputTokens: Int64 = 0, outputTokens: Int64 = 0,
        reasoningTokens: Int64 = 0, durationMs: Int64 = 0, providerCost: Money = .zero,
        agentId: String = "", sessionId: String? = nil, status: String? = nil, model: String? = nil
    ) {
        self.tool = tool
        self.quantity = quantity
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.reasoningTokens = reasoningTokens
        self.durationMs = durationMs
        self.providerCost = providerCost
        self.agentId = agentId
        self.sessionId = sessionId
        self.status = status
        self.model = model
    }

    public var isError: Bool { CallStatus.isError(status) }
}

/// The count a charge is computed from. `graduated` and `volume` take any of them; the other strategies
/// say which they count.
public enum Metric: String, Sendable, CaseIterable {
    case calls
    case inputTokens = "input_tokens"
    case outputTokens = "output_tokens"
    case reasoningTokens = "reasoning_tokens"
    case durationMs = "duration_ms"

    public func units(of event: RatedEvent) -> Int64 {
        switch self {
        case .calls: event.quantity
        case .inputTokens: event.inputTokens
        case .outputTokens: event.outputTokens
        case .reasoningTokens: event.reasoningTokens
        case .durationMs: event.durationMs
        }
    }
}
