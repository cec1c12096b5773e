import TollgateCore

/// A pricing strategy: one way of turning metered events into money. Each strategy is a plug-in target under
/// `Plugins/`, registered by `name` in a `StrategyRegistry`; the runtime never names a strategy.
///
/// A strategy is built once per plan version from its charge object (which it validates completely) and is
/// then immutable. Rating is *marginal*: a strategy folds each event into a running `State` (per
/// subscription and period) and says what everything folded so far costs; the price of an event is
/// `total(after) − total(before)`. So the running total is exact at every moment, whatever tiers were
/// crossed, and it equals the invoice. `total` must depend only on the multiset of events folded in, never
/// on their order or on how quantities were split between events, and it rounds once (half-even, to the
/// nano-unit) at the end: property tests hold every strategy to that.
public protocol PricingStrategy: Sendable {
    associatedtype State: Sendable

    /// The name a charge uses to select this strategy (`"strategy": "per_tool"`).
    static var name: String { get }

    /// Builds the strategy from one charge of a plan document, refusing anything it does not understand.
    init(charge: ChargeDocument) throws(PlanValidationError)

    /// A period with nothing rated yet.
    var initialState: State { get }

    /// What `event` would add to the total: `total(state + event) − total(state)`, without changing `state`
    /// (a call refused by a cap must leave no trace).
    func quote(_ event: RatedEvent, given state: State) throws(MoneyError) -> Money

    /// Folds one event into the running state.
    func accumulate(_ event: RatedEvent, into state: inout State) throws(MoneyError)

    /// The price of everything folded into `state`.
    func total(of state: State) throws(MoneyError) -> Money

    /// Whether some event can lower the total (a credit), as volume tiers with falling rates can. A plan
    /// using such a charge must say `"creditsAllowed": true`; otherwise no event is ever priced below zero.
    var mayCredit: Bool { get }

    /// What closing the period adds to the total: a committed amount's true-up. Zero for most strategies.
    func closingAdjustment(of state: State) throws(MoneyError) -> Money

    /// Whether an event's price can depend on the events before it (tiers, bundles, a commitment, even the
    /// rounding of an exact sum). True unless the strategy prices each event on its own; the runtime then
    /// keeps prices exact when a call admitted earlier is not recorded after all (`PricingStream`).
    var pricesDependOnEarlierEvents: Bool { get }

    /// Whether the charge divides what it includes among named agents (a commitment's allocations): an invoice
    /// then shows each agent's usage on lines of its own.
    var allocatesPerAgent: Bool { get }
}

extension PricingStrategy {
    public var allocatesPerAgent: Bool { false }
    public var mayCredit: Bool { false }
    public var pricesDependOnEarlierEvents: Bool { true }
    public func closingAdjustment(of state: State) throws(MoneyError) -> Money { .zero }
}

/// A plan document that breaks a rule. `field` is a path into the document (`charges[0].rates.search`),
/// `rule` says what the value must be; both go to the operator verbatim in `VALIDATION_FAILED`.
public struct PlanValidationError: Error, Sendable, Equatable {
    public var field: String
    public var rule: String
    public init(field: String, rule: String) {
        self.field = field
        self.rule = rule
    }
}

/// A strategy's state behind a reference, so the plan can hold the states of strategies of different types
/// and mutate each in place (a copy of a state holding a per-session table would copy the whole table).
final class StateBox<State> {
    var value: State
    init(_ value: State) { self.value = value }
}

extension PricingStrategy {
    func makeBox() -> AnyObject { StateBox(initialState) }

    func copyBox(_ box: AnyObject) -> AnyObject { StateBox(typed(box).value) }

    private func typed(_ box: AnyObject) -> StateBox<State> { unsafeDowncast(box, to: StateBox<State>.self) }

    func quote(_ event: RatedEvent, box: AnyObject) throws(MoneyError) -> Money {
        try quote(event, given: typed(box).value)
    }

    func accumulate(_ event: RatedEvent, box: AnyObject) throws(MoneyError) {
        try accumulate(event, into: &typed(box).value)
    }

    func total(box: AnyObject) throws(MoneyError) -> Money { try total(of: typed(box).value) }

    func closingAdjustment(box: AnyObject) throws(MoneyError) -> Money { try closingAdjustment(of: typed(box).value) }
}
