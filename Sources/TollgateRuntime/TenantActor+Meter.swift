import Foundation
import TollgateCore
import TollgateJSON
import TollgatePricing
import TollgateStorage

/// `meter.verify`: authenticate, price, check every cap, record durably, answer — or refuse and record nothing.
extension TenantActor {
    public func verify(_ request: MeterRequest, credentialId: String) async throws(TollgateError) -> Answer<Receipt> {
        let credential = try meterCredential(credentialId)
        let call = request.keyed(by: credential.agentId)
        // Keys recorded before this actor started (by another process, or forgotten by memory) are caught by the
        // ledger writer, inside the very transaction that would record the charge: the hot path reads nothing.
        return try await keyed(call, lookUpStored: false) { () async throws(TollgateError) in
            try await charge(request, call: call, credential: credential, settling: nil)
        }
    }

    /// Charges `request` — or, `settling` a reservation, its commit, which gives the reservation's hold back in
    /// the turn that checks the caps for the actual cost.
    func charge(
        _ request: MeterRequest, call: KeyedCall, credential: Credential, settling reservation: ReservationRecord?
    ) async throws(TollgateError) -> Answer<Receipt> {
        let caller = try directory.agent(credential.agentId)
        try await ensureSession(request.sessionId, for: caller, openedAt: now)
        // A call priced with a call counted that was then not recorded is priced again (`PricingStream`). Each
        // attempt after the first means another call of the subscription was lost meanwhile, which only a
        // storage outage or a retry storm does; a few attempts settle it.
        // One attempt more than the pricing attempts: the first may only load what the price needs.
        for _ in 0...Self.pricingAttemptsMax {
            // A call is stamped in the turn that queues its record, so that closing a period — which waits for
            // what is queued — never misses a call stamped inside it. What a price needs that may wait on storage
            // (a cold pricing state, a customer's month) is loaded when missing, and the call stamped again after.
            let at = sessions.callTime(in: request.sessionId, now: now)
            let pricing = try directory.pricing(for: credential, product: request.product, at: at)
            try pricing.check(tool: request.event.tool)
            guard let rating = cachedRating(for: pricing.subscription, plan: pricing.plan, at: at),
                !guards.needsMargin(
                    pricing.team.customerId, in: directory.capWindows(pricing.team.customerId, at: at).month)
            else {
                try await loadCustomerMargin(pricing.team.customerId, at: at)
                _ = try await rating(for: pricing.subscription, plan: pricing.plan, at: at)
                continue
            }
            var event = request.event
            event.agentId = pricing.agent.id
            event.sessionId = request.sessionId
            let path = pricing.path(sessionId: request.sessionId, credentialId: credential.id)
            // From here to the ledger submit there is no suspension point: the session's activity, the quote,
            // the cap check and folding the call into the running totals happen in one actor turn.
            let admission: Admission
            do {
                admission = try admit(event, path: path, rating: rating, at: at, settling: reservation)
            } catch .budgetExceeded(let refusal, let currency) {
                // Before refusing, make sure this is not the retry of a call answered before a restart: that
                // one was already charged and must be replayed, not refused. Only refusals pay for this look-up.
                if let stored = try await storedAnswer(request.idempotencyKey) {
                    return Answer(replay: try keys.replay(stored: stored, asking: call))
                }
                throw .budgetExceeded(refusal, currency: currency)
            }
            let receiptId = Identifiers.make(.receipt)
            let answer = Answer(
                receipt(
                    receiptId: receiptId, admission: admission, currency: pricing.plan.currency,
                    settling: reservation))
            var record = ChargeRecord(
                receiptId: receiptId, tenantId: tenantId, path: path, subscriptionId: pricing.subscription.id,
                planId: pricing.plan.id, planVersion: pricing.plan.version, tool: event.tool, quantity: event.quantity,
                inputTokens: event.inputTokens, outputTokens: event.outputTokens,
                reasoningTokens: event.reasoningTokens, durationMs: event.durationMs, status: request.status,
                cost: admission.cost, providerCost: event.providerCost, model: event.model,
                currency: pricing.plan.currency,
                idempotencyKey: request.idempotencyKey, at: at)
            // A commit is the invocation its hold was made for, under the hold's key, where the hold placed it.
            record.invocationId = reservation?.idempotencyKey ?? request.idempotencyKey
            record.parentInvocationId = reservation?.parentInvocationId ?? request.parentInvocationId
            record.retryCount = reservation?.retryCount ?? request.retryCount
            record.parallel = reservation?.parallel ?? request.parallel
            let entry = LedgerEntry(
                charge: record, idempotency: idempotencyRecord(call, answer: answer.json, at: at),
                pricing: admission.ticket, settles: reservation?.id)
            let outcome: CommitOutcome
            do { outcome = try await services.ledger.submit(entry) } catch {
                finish(admission, recorded: nil)
                throw error
            }
            switch outcome {
            case .recorded:
                finish(admission, recorded: record)
                raise(
                    CapAlerts.recorded(
                        admission.cost, path: path, scopes: admission.scopes, during: admission.windows,
                        ledger: capLedger, marks: &marks))
                raise(
                    guards.recorded(
                        record, session: sessions[path.sessionId]?.record.totals, month: admission.windows.month,
                        marks: &marks))
                // A commit's hold was marked committed in the charge's own transaction.
                return answer
            case .duplicate(let stored):
                // Charged by an earlier call with this key: nothing new was written, so give the hold back.
                finish(admission, recorded: nil)
                if let reservation { await settled(reservation, receiptId: nil) }
                return Answer(replay: try keys.replay(stored: stored, asking: call))
            case .stale:
                finish(admission, recorded: nil)
            }
        }
        services.logger.error("a call could not be priced stably", metadata: ["tenant": "\(tenantId)"])
        throw .unavailable("recording failed; nothing was recorded")
    }

    /// The answer to an accepted call. `remaining` names each capped scope on the path with what is left
    /// under its tightest cap once this call is counted.
    private func receipt(
        receiptId: String, admission: Admission, currency: String, settling reservation: ReservationRecord?
    ) -> Receipt {
        var remaining: [CapScope: Money] = [:]
        // A delegated credential's scope says the least that it and the credentials above it have left.
        for target in capLedger.expanded(admission.scopes) {
            let caps = capLedger.caps(on: target)
            guard !caps.isEmpty else { continue }
            let left = caps.map { capLedger.remaining($0, on: admission.scopes, during: admission.windows) }.min()!
            remaining[target.scope] = min(remaining[target.scope] ?? left, left)
        }
        return Receipt(
            receiptId: receiptId, cost: admission.cost, currency: currency, sessionId: admission.path.sessionId,
            remaining: remaining, at: admission.at, settled: reservation.map { ($0.id, $0.held) })
    }

    /// Loads the customer's revenue and provider cost in its billing period (for the margin guard) on its first
    /// call after a start, or in a new period.
    func loadCustomerMargin(_ customerId: String, at date: Date) async throws(TollgateError) {
        let month = directory.capWindows(customerId, at: date).month
        guard guards.needsMargin(customerId, in: month) else { return }
        let rows = try await storage("loading a customer's period") { () async throws(StorageError) in
            try await services.store.usage(
                tenantId: tenantId, filter: UsageFilter(customerId: customerId, from: month.start), groupBy: [])
        }
        var revenue = Money.zero
        var providerCost = Money.zero
        for row in rows {
            revenue = (try? revenue.adding(row.cost)) ?? revenue
            providerCost = (try? providerCost.adding(row.providerCost)) ?? providerCost
        }
        guards.loadMargin(customerId, in: month, revenue: revenue, providerCost: providerCost)
    }
}
