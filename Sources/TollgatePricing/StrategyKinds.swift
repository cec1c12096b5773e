// The shapes most strategies take, each giving marginal rating from one function a strategy writes.
import TollgateCore

/// A strategy whose period total depends only on how many units of one metric the period counted
/// (`graduated`, `volume`): it says what a count costs, and gets marginal rating from this.
public protocol UnitCountStrategy: PricingStrategy where State == Int64 {
    var metric: Metric { get }
    /// The price of the period having counted `units`.
    func price(units: Int64) throws(MoneyError) -> Money
}

extension UnitCountStrategy {
    public var initialState: Int64 { 0 }

    public func quote(_ event: RatedEvent, given state: Int64) throws(MoneyError) -> Money {
        try price(units: try adding(event, to: state)).subtracting(try price(units: state))
    }

    public func accumulate(_ event: RatedEvent, into state: inout Int64) throws(MoneyError) {
        state = try adding(event, to: state)
    }

    public func total(of state: Int64) throws(MoneyError) -> Money { try price(units: state) }

    private func adding(_ event: RatedEvent, to units: Int64) throws(MoneyError) -> Int64 {
        let (after, overflow) = units.addingReportingOverflow(metric.units(of: event))
        guard !overflow else { throw .overflow }
        return after
    }
}

/// A strategy whose period total is an exact sum of per-event amounts that may fall between nano-units
/// (`token_multiplier`, `cost_plus`): the sum is kept exact and rounded once when read, so that a total
/// never depends on how its events were split. The strategy says what one event adds.
public protocol ExactSumStrategy: PricingStrategy where State == ExactAmount {
    func amount(of event: RatedEvent) throws(MoneyError) -> ExactAmount
}

extension ExactSumStrategy {
    public var initialState: ExactAmount { .zero }

    public func quote(_ event: RatedEvent, given state: ExactAmount) throws(MoneyError) -> Money {
        try state.adding(try amount(of: event)).rounded().subtracting(try state.rounded())
    }

    public func accumulate(_ event: RatedEvent, into state: inout ExactAmount) throws(MoneyError) {
        state = try state.adding(try amount(of: event))
    }

    public func total(of state: ExactAmount) throws(MoneyError) -> Money { try state.rounded() }
}

/// A strategy that prices each event on its own, whatever came before (`per_tool`, `duration_buckets`): the
/// period total is the sum of its events' prices.
public protocol PerEventStrategy: PricingStrategy where State == Money {
    func price(of event: RatedEvent) throws(MoneyError) -> Money
}

extension PerEventStrategy {
    public var initialState: Money { .zero }

    public var pricesDependOnEarlierEvents: Bool { false }

    public func quote(_ event: RatedEvent, given state: Money) throws(MoneyError) -> Money { try price(of: event) }

    public func accumulate(_ event: RatedEvent, into state: inout Money) throws(MoneyError) {
        state = try state.adding(try price(of: event))
    }

    public func total(of state: Money) throws(MoneyError) -> Money { state }
}
