import TollgateCore
import TollgatePricing

/// `session_bundle`: a fee per session that includes a number of calls, and a rate per call beyond them.
///
/// ```json
/// {"strategy":"session_bundle","fee":"5","includedCalls":100,"overageRate":"0.05"}
/// ```
/// The first call of a session costs the fee; calls up to `includedCalls` (counting each call's `quantity`)
/// cost nothing more; each call after that costs `overageRate`. Sessions are counted within the period, so a
/// session that spans two months pays its fee in each. A call without a session is a session of its own.
public struct SessionBundleStrategy: PricingStrategy {
    public static let name = "session_bundle"
    public let fee: Money
    public let includedCalls: Int64
    public let overageRate: Money

    public struct State: Sendable {
        /// Calls so far per session.
        var calls: [String: Int64] = [:]
        var total = Money.zero
    }

    public init(charge: ChargeDocument) throws(PlanValidationError) {
        try charge.allowOnly(["strategy", "fee", "includedCalls", "overageRate"], kind: "session_bundle")
        fee = try charge.amount("fee")
        includedCalls = try charge.count("includedCalls")
        overageRate = try charge.amount("overageRate")
    }

    public var initialState: State { State() }

    public func quote(_ event: RatedEvent, given state: State) throws(MoneyError) -> Money {
        let before = event.sessionId.flatMap { state.calls[$0] }
        let (after, overflow) = (before ?? 0).addingReportingOverflow(event.quantity)
        guard !overflow else { throw .overflow }
        let overage = max(0, after - includedCalls) - max(0, (before ?? 0) - includedCalls)
        let price = try overageRate.multiplied(by: overage)
        return before == nil ? try price.adding(fee) : price
    }

    public func accumulate(_ event: RatedEvent, into state: inout State) throws(MoneyError) {
        let price = try quote(event, given: state)
        state.total = try state.total.adding(price)
        if let session = event.sessionId { state.calls[session, default: 0] += event.quantity }
    }

    public func total(of state: State) throws(MoneyError) -> Money { state.total }
}
