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
        if let rating = cachedRating(for: subscription, plan: plan, at: now) { return rating }
        // Totals run for the subscription's billing period: they start again where its customer's period does.
        let period = directory.calendar(for: subscription).period(containing: now)
        let rows = try await storage("rebuilding a pricing state") { () async throws(StorageError) in
            try await services.store.charges(tenantId: tenantId, subscriptionId: subscription.id, from: period.start)
        }
        // Another call may have built it while this one waited on storage: keep the first, which may
        // already hold calls in flight.
        if let rating = cachedRating(for: subscription, plan: plan, at: now) { return rating }
        let recorded = PlanRating(plan: plan, period: period.start)
        do {
            // A plan version swapped in mid-month starts its own totals: each version rates its own calls.
            for row in rows where row.planId == plan.id && row.planVersion == plan.version {
                try recorded.rate(RatedEvent(row))
            }
        } catch {
            throw .unavailable("recorded charges of subscription \(subscription.id) cannot be re-rated")
        }
        let rating = SubscriptionRating(recorded: recorded, period: period)
        // Each version keeps its own state for the period (a swap mid-period starts its own totals); the states
        // of periods that have ended go.
        ratings = ratings.filter { $0.value.period.end > now }
        ratings[Self.ratingKey(subscription, plan)] = rating
        return rating
    }

    /// The rating state, if it is in memory already: what a turn that must not suspend can use.
    func cachedRating(for subscription: SubscriptionRecord, plan: Plan, at now: Date) -> SubscriptionRating? {
        guard let rating = ratings[Self.ratingKey(subscription, plan)], rating.period.contains(now) else { return nil }
        return rating
    }

    private static func ratingKey(_ subscription: SubscriptionRecord, _ plan: Plan) -> String {
        "\(subscription.id) \(plan.id) \(plan.version)"
    }
}

extension RatedEvent {
    /// A recorded charge's usage, as it was rated.
    init(_ charge: ChargeRecord) {
        self.init(
            tool: charge.tool, quantity: charge.quantity, inputTokens: charge.inputTokens,
            outputTokens: charge.outputTokens, reasoningTokens: charge.reasoningTokens, durationMs: charge.durationMs,
            providerCost: charge.providerCost, agentId: charge.agentId, sessionId: charge.sessionId,
            status: charge.status, model: charge.model)
    }

    init(_ row: RatingRow) {
        self.init(
            tool: row.tool, quantity: row.quantity, inputTokens: row.inputTokens, outputTokens: row.outputTokens,
            reasoningTokens: row.reasoningTokens, durationMs: row.durationMs, providerCost: row.providerCost,
            agentId: row.agentId, sessionId: row.sessionId, status: row.status)
    }
}
