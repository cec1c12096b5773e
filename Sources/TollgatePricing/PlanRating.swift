import Foundation
import TollgateCore

/// One subscription's running totals under one plan version for one period: the state every charge has
/// accumulated, and what the modifiers need (calls and failures per session, the period's count).
///
/// Rating is two steps so that a refused call leaves no trace: `quote` prices an event against the state
/// without changing it, and `apply` folds it in once the call is accepted. Both run in the tenant's actor,
/// in the same turn as the cap check, so no other event slips between them.
///
/// The price of an event is `total(after) − total(before)` for the plan as a whole; summed over a period's
/// events it is exactly `total`, whatever tiers, bundles or penalties were crossed on the way.
public final class PlanRating {
    public let plan: Plan
    /// The start of the period these totals belong to.
    public let period: Date
    private let boxes: [AnyObject]

    /// Σ of the charges' totals: the price before modifiers.
    private var base = Money.zero
    /// Per session (or one entry for the period): the base price, calls and failed calls so far.
    private var scopes: [String: ScopeTally] = [:]
    /// Σ over scopes of base × penalty factor.
    private var penalized = ExactAmount.zero
    /// The count the volume discount's tiers are read from.
    private var discountUnits: Int64 = 0
    /// The plan's total: what the period has cost so far.
    public private(set) var total = Money.zero
    /// Events folded in.
    public private(set) var events: Int64 = 0

    struct ScopeTally: Sendable, Hashable {
        var base = Money.zero
        var calls: Int64 = 0
        var errors: Int64 = 0
    }

    /// The price of one event, and the base price (before modifiers) it adds, for `apply`.
    public struct Quote: Sendable, Hashable {
        public var price: Money
        var base: Money
        /// The modifier state after the event, computed by `quote` so that `apply` only stores it.
        fileprivate var modified: Modified?
    }

    public init(plan: Plan, period: Date = Date(timeIntervalSince1970: 0)) {
        self.plan = plan
        self.period = period
        boxes = plan.charges.map { $0.makeBox() }
    }

    private init(copying other: PlanRating) {
        plan = other.plan
        period = other.period
        boxes = zip(other.plan.charges, other.boxes).map { charge, box in charge.copyBox(box) }
        base = other.base
        scopes = other.scopes
        penalized = other.penalized
        discountUnits = other.discountUnits
        total = other.total
        events = other.events
    }

    /// An independent copy of these totals: what is folded into one is not seen by the other.
    public func copy() -> PlanRating { PlanRating(copying: self) }

    /// What `event` costs given everything rated so far. Changes nothing.
    public func quote(_ event: RatedEvent) throws(MoneyError) -> Quote {
        var base = Money.zero
        for (charge, box) in zip(plan.charges, boxes) { base = try base.adding(try charge.quote(event, box: box)) }
        if plan.modifiers.isEmpty { return Quote(price: base, base: base, modified: nil) }
        let after = try modified(adding: event, base: base)
        return Quote(price: try after.total.subtracting(total), base: base, modified: after)
    }

    /// Folds an accepted event in; `quote` must be this event's quote against the current state.
    public func apply(_ event: RatedEvent, quote: Quote) throws(MoneyError) {
        for (charge, box) in zip(plan.charges, boxes) { try charge.accumulate(event, box: box) }
        base = try base.adding(quote.base)
        events += 1
        guard let after = quote.modified else {
            total = try total.adding(quote.price)
            return
        }
        if let key = after.scopeKey { scopes[key] = after.scope }
        penalized = after.penalized
        discountUnits = after.discountUnits
        total = after.total
    }

    /// Rates and applies in one step (offline simulation, rebuilding from storage).
    @discardableResult
    public func rate(_ event: RatedEvent) throws(MoneyError) -> Money {
        let quote = try quote(event)
        try apply(event, quote: quote)
        return quote.price
    }

    /// What closing the period adds to `total` (a committed amount's true-up).
    public func closingAdjustment() throws(MoneyError) -> Money {
        var sum = Money.zero
        for (charge, box) in zip(plan.charges, boxes) { sum = try sum.adding(try charge.closingAdjustment(box: box)) }
        return sum
    }

    /// Each charge's own total, in the plan's order: the invoice preview's lines before modifiers.
    public func chargeTotals() throws(MoneyError) -> [Money] {
        var totals: [Money] = []
        for (charge, box) in zip(plan.charges, boxes) { totals.append(try charge.total(box: box)) }
        return totals
    }

    /// The price before modifiers.
    public var baseTotal: Money { base }

    fileprivate struct Modified: Sendable, Hashable {
        var scopeKey: String?
        var scope = ScopeTally()
        var penalized: ExactAmount
        var discountUnits: Int64
        var total: Money
    }

    /// The modifier state and plan total after adding `event`, whose charges add `base`.
    private func modified(adding event: RatedEvent, base: Money) throws(MoneyError) -> Modified {
        var result = Modified(penalized: penalized, discountUnits: discountUnits, total: total)
        if let penalty = plan.modifiers.errorRatePenalty {
            // A call without a session is a session of its own.
            let key = penalty.scope == .period ? "" : (event.sessionId ?? "\u{0}call-\(events)")
            let before = scopes[key] ?? ScopeTally()
            var after = before
            after.base = try after.base.adding(base)
            // Counted in calls (`quantity`), like every other count, so splitting a call changes nothing.
            after.calls += event.quantity
            if event.isError { after.errors += event.quantity }
            result.penalized = try result.penalized
                .subtracting(
                    try ExactAmount(before.base, times: penalty.factor(errors: before.errors, calls: before.calls))
                )
                .adding(try ExactAmount(after.base, times: penalty.factor(errors: after.errors, calls: after.calls)))
            result.scopeKey = key
            result.scope = after
        } else {
            result.penalized = try result.penalized.adding(ExactAmount(base))
        }
        var amount = result.penalized
        if let discount = plan.modifiers.volumeDiscount {
            let (units, overflow) = discountUnits.addingReportingOverflow(discount.metric.units(of: event))
            guard !overflow else { throw .overflow }
            result.discountUnits = units
            amount = try amount.times(discount.factor(units: units))
        }
        result.total = try amount.rounded()
        return result
    }
}
