import TollgateCore

/// A pricing strategy: one way of turning a metered event into money. Each strategy is a plug-in target
/// under `Plugins/`, registered by `name` in a `StrategyRegistry`; the runtime never names a strategy.
///
/// A strategy is built once per plan version from its charge object (which it validates completely) and is
/// then a pure, immutable function of the events it rates.
public protocol PricingStrategy: Sendable {
    /// The name a charge uses to select this strategy (`"strategy": "per_tool"`).
    static var name: String { get }

    /// Builds the strategy from one charge of a plan document, refusing anything it does not understand.
    /// `field` is the charge's path in the document (`charges[0]`), for naming the offending field.
    init(charge: [String: JSONValue], currency: String, field: String) throws(PlanValidationError)

    /// The price of one event under this charge.
    func price(of event: RatedEvent) throws(MoneyError) -> Money
}

/// What rating needs to know of one metered call.
public struct RatedEvent: Sendable, Hashable {
    public var tool: String
    /// How many units of the tool this call used (default 1).
    public var quantity: Int64
    public var inputTokens: Int64
    public var outputTokens: Int64
    public var reasoningTokens: Int64
    public var durationMs: Int64
    public var providerCost: Money

    public init(tool: String, quantity: Int64 = 1, inputTokens: Int64 = 0, outputTokens: Int64 = 0,
                reasoningTokens: Int64 = 0, durationMs: Int64 = 0, providerCost: Money = .zero) {
        self.tool = tool; self.quantity = quantity; self.inputTokens = inputTokens; self.outputTokens = outputTokens
        self.reasoningTokens = reasoningTokens; self.durationMs = durationMs; self.providerCost = providerCost
    }
}

/// A plan document that breaks a rule. `field` is a path into the document (`charges[0].rates.search`),
/// `rule` says what the value must be; both go to the operator verbatim in `VALIDATION_FAILED`.
public struct PlanValidationError: Error, Sendable, Equatable {
    public var field: String
    public var rule: String
    public init(field: String, rule: String) { self.field = field; self.rule = rule }
}
