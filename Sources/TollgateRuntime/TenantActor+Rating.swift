import Foundation
import TollgateCore
import TollgatePricing
import TollgateStorage

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
        -> SubscriptionRating
    {
        let monthStart = PeriodCalendar.startOfMonth(now)
        func cached() -> SubscriptionRating? {
            guard let rating = ratings[subscription.id], rating.plan.id == plan.id, rating.plan.version == plan.version,
                rating.period == monthStart
            else { return nil }
            return rating
        }
        if let rating = cached() { return rating }
        let rows = try await storage("rebuilding a pricing state") { () async throws(StorageError) in
            try await services.store.charges(tenantId: tenantId, subscriptionId: subscription.id, from: monthStart)
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
        self.init(
            tool: row.tool, quantity: row.quantity, inputTokens: row.inputTokens, outputTokens: row.outputTokens,
            reasoningTokens: row.reasoningTokens, durationMs: row.durationMs, providerCost: row.providerCost,
            agentId: row.agentId, sessionId: row.sessionId, status: row.status)
    }
}
