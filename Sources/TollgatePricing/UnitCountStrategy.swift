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
