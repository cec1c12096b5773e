import TollgateCore
import TollgatePricing

/// `committed`: a committed amount for the period that buys a number of calls, allocated per agent, with a
/// rate for calls beyond an agent's allocation and a true-up to the commitment when the period closes.
///
/// ```json
/// {"strategy":"committed","amount":"10000","includedCalls":1000000,"overageRate":"0.01",
///  "allocations":{"agt_support":300000,"agt_analyst":500000,"agt_integration":200000}}
/// ```
/// A call within its agent's allocation costs `amount ÷ includedCalls` (here 0.01); beyond it, `overageRate`.
/// `allocations` maps agent ids to calls; `*` is a pool shared by agents not listed. Without `allocations`
/// every agent draws on one pool of `includedCalls`; with it, an agent that is neither listed nor covered by
/// `*` pays overage on every call. When the period closes, whatever of the commitment the calls within
/// allocations did not use is billed as the true-up, so the period costs at least `amount`.
public struct CommittedStrategy: PricingStrategy {
    public static let name = "committed"
    public let amount: Money
    public let includedCalls: Int64
    public let overageRate: Money
    /// Calls per pool: agent ids, and `*`.
    public let allocations: [String: Int64]

    public struct State: Sendable {
        /// Calls so far per pool.
        var calls: [String: Int64] = [:]
        var within: Int64 = 0
        var overage: Int64 = 0
    }

    public init(charge: ChargeDocument) throws(PlanValidationError) {
        try charge.allowOnly(["strategy", "amount", "includedCalls", "overageRate", "allocations"], kind: "committed")
        amount = try charge.amount("amount")
        includedCalls = try charge.count("includedCalls", minimum: 1)
        overageRate = try charge.amount("overageRate")
        if charge.object["allocations"] != nil {
            allocations = try charge.table("allocations") { value, field throws(PlanValidationError) in
                try ChargeDocument.count(value, field: field)
            }
            var sum: Int64 = 0
            for (_, calls) in allocations {
                let (next, overflow) = sum.addingReportingOverflow(calls)
                guard !overflow, next <= includedCalls else {
                    throw charge.error(
                        "allocations", "allocations adding up to at most includedCalls (\(includedCalls))")
                }
                sum = next
            }
        } else {
            allocations = ["*": includedCalls]
        }
    }

    public var initialState: State { State() }

    /// Named agents have allocations of their own (not only the shared pool, `*`).
    public var allocatesPerAgent: Bool { allocations.keys.contains { $0 != "*" } }

    private func pool(of event: RatedEvent) -> String { allocations[event.agentId] != nil ? event.agentId : "*" }

    /// The calls of `event` that fall within its pool's allocation, and those beyond it.
    private func split(_ event: RatedEvent, _ state: State) throws(MoneyError) -> (within: Int64, overage: Int64) {
        let pool = pool(of: event)
        let allocation = allocations[pool] ?? 0
        let before = state.calls[pool] ?? 0
        let (after, overflow) = before.addingReportingOverflow(event.quantity)
        guard !overflow else { throw .overflow }
        let within = min(after, allocation) - min(before, allocation)
        return (within, event.quantity - within)
    }

    public func quote(_ event: RatedEvent, given state: State) throws(MoneyError) -> Money {
        let (within, overage) = try split(event, state)
        var after = state
        after.within += within
        after.overage += overage
        return try price(within: after.within, overage: after.overage)
            .subtracting(try price(within: state.within, overage: state.overage))
    }

    public func accumulate(_ event: RatedEvent, into state: inout State) throws(MoneyError) {
        let (within, overage) = try split(event, state)
        state.calls[pool(of: event), default: 0] += event.quantity
        state.within += within
        state.overage += overage
    }

    public func total(of state: State) throws(MoneyError) -> Money {
        try price(within: state.within, overage: state.overage)
    }

    public func closingAdjustment(of state: State) throws(MoneyError) -> Money {
        let used = try withinValue(state.within)
        return used < amount ? try amount.subtracting(used) : .zero
    }

    private func withinValue(_ calls: Int64) throws(MoneyError) -> Money {
        try ExactAmount.share(of: amount, calls, per: includedCalls)
    }

    private func price(within: Int64, overage: Int64) throws(MoneyError) -> Money {
        try withinValue(within).adding(try overageRate.multiplied(by: overage))
    }
}
