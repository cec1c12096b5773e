import Foundation
import TollgateCore
import TollgatePricing
import TollgateStorage

/// One subscription's pricing state for one month under one plan version, in two views:
///
/// - `admitted` holds every call admitted so far, recorded or still on its way to storage: the next call is
///   quoted against it, so calls in flight together are priced one after the other, marginally.
/// - `recorded` holds only the calls whose records are durable: what storage would rebuild.
///
/// A call that is admitted and then not recorded (its group commit failed, or its key turned out to be
/// recorded already, as when a client retries after a restart) is taken out by starting `admitted` again
/// from `recorded` plus the calls still in flight. Nothing is read from storage for that, so a retry storm
/// after a restart costs no more per call as the month's charges grow, and the totals never leave out a
/// call that is still queued in the ledger writer.
final class SubscriptionRating {
    private(set) var admitted: PlanRating
    private var recorded: PlanRating
    /// The calls admitted and not yet recorded or dropped, by admission number.
    private var inFlight: [UInt64: RatedEvent] = [:]
    private var nextNumber: UInt64 = 0

    var plan: Plan { recorded.plan }
    var period: Date { recorded.period }

    /// Starts from what storage holds.
    init(recorded: PlanRating) {
        self.recorded = recorded
        admitted = recorded.copy()
    }

    /// Folds an admitted call into `admitted`; `quote` must be its quote against it. Returns the call's number.
    func admit(_ event: RatedEvent, quote: PlanRating.Quote) throws(MoneyError) -> UInt64 {
        try admitted.apply(event, quote: quote)
        nextNumber += 1
        inFlight[nextNumber] = event
        return nextNumber
    }

    /// The call's record is durable.
    func recorded(_ number: UInt64) {
        guard let event = inFlight.removeValue(forKey: number) else { return }
        // It was priced within range when admitted, against totals that held at least these.
        _ = try? recorded.rate(event)
    }

    /// The call was not recorded: `admitted` starts again without it.
    func dropped(_ number: UInt64) {
        guard inFlight.removeValue(forKey: number) != nil else { return }
        let rebuilt = recorded.copy()
        for (_, event) in inFlight.sorted(by: { $0.key < $1.key }) { _ = try? rebuilt.rate(event) }
        admitted = rebuilt
    }
}

/// The pricing state of each subscription: a `SubscriptionRating` holding the month's running totals, so
/// that tiered, bundled and committed plans price each call marginally against everything before it.
///
/// After a swap (`subscriptions.swap`) the new version starts totals of its own for the rest of the month;
/// the calls before the swap stay priced as they were.
///
/// The state lives in memory and is built from the month's recorded charges the first time a subscription
/// is rated after a start (or in a new month, or under a new plan version), so a restart never changes the
/// next price.
extension TenantActor {
    /// The rating state of `subscription` under `plan` for the month containing `now`.
    func rating(for subscription: SubscriptionRecord, plan: Plan, at now: Date) async throws(TollgateError)
        -> SubscriptionRating {
        let monthStart = PeriodCalendar.startOfMonth(now)
        func cached() -> SubscriptionRating? {
            guard let rating = ratings[subscription.id], rating.plan.id == plan.id, rating.plan.version == plan.version,
                  rating.period == monthStart else { return nil }
            return rating
        }
        if let rating = cached() { return rating }
        let rows: [RatingRow]
        do {
            rows = try await services.store.charges(tenantId: tenantId, subscriptionId: subscription.id, from: monthStart)
        } catch {
            services.logger.error("rebuilding pricing state failed", metadata: ["tenant": "\(tenantId)", "error": "\(error)"])
            throw .unavailable("storage is unavailable; nothing was recorded")
        }
        // Another call may have built it while this one waited on storage: keep the first, which may
        // already hold calls in flight.
        if let rating = cached() { return rating }
        let recorded = PlanRating(plan: plan, period: monthStart)
        do {
            // A plan version swapped in mid-month starts its own totals: each version rates its own calls.
            for row in rows where row.planId == plan.id && row.planVersion == plan.version {
                try recorded.rate(RatedEvent(row))
            }
        } catch {
            throw .unavailable("recorded charges of subscription \(subscription.id) cannot be re-rated")
        }
        let rating = SubscriptionRating(recorded: recorded)
        ratings[subscription.id] = rating
        return rating
    }
}

extension RatedEvent {
    init(_ row: RatingRow) {
        self.init(tool: row.tool, quantity: row.quantity, inputTokens: row.inputTokens, outputTokens: row.outputTokens,
                  reasoningTokens: row.reasoningTokens, durationMs: row.durationMs, providerCost: row.providerCost,
                  agentId: row.agentId, sessionId: row.sessionId, status: row.status)
    }
}
