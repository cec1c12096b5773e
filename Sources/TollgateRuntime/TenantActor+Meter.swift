import Foundation
import TollgateCore
import TollgatePricing
import TollgateStorage

/// `meter.verify`: authenticate, price, check every cap, record durably, answer — or refuse and record nothing.
extension TenantActor {
    public func verify(_ request: MeterRequest, credentialId: String) async throws(TollgateError) -> JSONValue {
        try await verify(request, credentialId: credentialId, settling: nil)
    }

    /// `meter.verify`, or the commit of a reservation (`settling`), which is the same call with the
    /// reservation's hold given back in the turn that checks the caps for the actual cost.
    func verify(_ request: MeterRequest, credentialId: String, settling reservation: ReservationRecord?)
        async throws(TollgateError) -> JSONValue
    {
        let credential = try meterCredential(credentialId)
        let key = request.idempotencyKey
        let fingerprint = Fingerprint.make(params: request.params, agentId: credential.agentId)
        if let replay = try recall(key, method: request.method, fingerprint: fingerprint) { return replay }

        // Claim the key before the first suspension point: a concurrent retry now sees IN_PROGRESS.
        // Keys recorded before this actor started (another process, or evicted from memory) are caught
        // by the ledger writer, inside the very transaction that would record the charge.
        recentKeys.set(key, .inFlight(method: request.method, fingerprint: fingerprint))
        do {
            return try await charge(request, credential: credential, fingerprint: fingerprint, settling: reservation)
        } catch {
            // Nothing was recorded under this key by this call: let a retry try afresh.
            recentKeys.removeIfInFlight(key)
            throw error
        }
    }

    private func charge(
        _ request: MeterRequest, credential: Credential, fingerprint: String,
        settling reservation: ReservationRecord?
    ) async throws(TollgateError) -> JSONValue {
        let caller = try agent(credential.agentId)
        try await ensureSession(request.sessionId, for: caller, openedAt: services.clock.now())
        // A call priced with a call counted that was then not recorded is priced again (`PricingStream`). Each
        // attempt after the first means another call of the subscription was lost meanwhile, which only a
        // storage outage or a retry storm does; a few attempts settle it.
        for _ in 1...Self.pricingAttemptsMax {
            let now = callTime(in: request.sessionId)
            let (agent, team, subscription, plan) = try pricing(for: credential, at: now)
            try await loadCustomerMargin(team.customerId, at: now)
            let rating = try await rating(for: subscription, plan: plan, at: now)
            var event = request.event
            event.agentId = agent.id
            event.sessionId = request.sessionId
            let path = ChargePath(
                customerId: team.customerId, teamId: team.id, agentId: agent.id,
                sessionId: request.sessionId, credentialId: credential.id)
            // From here to the ledger submit there is no suspension point: the session's activity, the quote,
            // the cap check and folding the call into the running totals happen in one actor turn.
            let admission: Admission
            do {
                admission = try admit(event, path: path, rating: rating, at: now, settling: reservation)
            } catch .budgetExceeded(let refusal, let currency) {
                // Before refusing, make sure this is not the retry of a call answered before a restart: that
                // one was already charged and must be replayed, not refused. Only refusals pay for this look-up.
                if let stored = try await storedAnswer(request.idempotencyKey) {
                    return try replay(stored: stored, asking: request.method, fingerprint)
                }
                throw .budgetExceeded(refusal, currency: currency)
            }
            let receiptId = Identifiers.make(.receipt)
            var result = receipt(
                receiptId: receiptId, cost: admission.cost, currency: plan.currency, path: path,
                scopes: admission.scopes, period: admission.period, at: now)
            if let reservation, case .object(var fields) = result {
                fields["reservationId"] = .string(reservation.id)
                fields["held"] = .string(reservation.held.decimalString)
                result = .object(fields)
            }
            let record = ChargeRecord(
                receiptId: receiptId, tenantId: tenantId, path: path, subscriptionId: subscription.id,
                planId: plan.id, planVersion: plan.version, tool: event.tool, quantity: event.quantity,
                inputTokens: event.inputTokens, outputTokens: event.outputTokens,
                reasoningTokens: event.reasoningTokens, durationMs: event.durationMs, status: request.status,
                cost: admission.cost, providerCost: event.providerCost, currency: plan.currency,
                idempotencyKey: request.idempotencyKey, at: now)
            let idempotency = IdempotencyRecord(
                tenantId: tenantId, key: request.idempotencyKey, method: request.method, params: fingerprint,
                result: JSONCodec.string(result), createdAt: now)
            let outcome: CommitOutcome
            do {
                outcome = try await services.ledger.submit(
                    LedgerEntry(charge: record, idempotency: idempotency, pricing: admission.ticket))
            } catch {
                finish(admission, recorded: nil)
                throw error
            }
            switch outcome {
            case .recorded:
                finish(admission, recorded: record)
                capWarnings(
                    after: admission.cost, path: path, scopes: admission.scopes, period: admission.period,
                    at: now)
                guardsAfter(record)
                if let reservation { await settled(reservation, receiptId: receiptId) }
                recentKeys.set(
                    request.idempotencyKey,
                    .done(method: request.method, fingerprint: fingerprint, result: result))
                return result
            case .duplicate(let stored):
                // Charged by an earlier call with this key: nothing new was written, so give the hold back.
                finish(admission, recorded: nil)
                if let reservation { await settled(reservation, receiptId: nil) }
                return try replay(stored: stored, asking: request.method, fingerprint)
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
        receiptId: String, cost: Money, currency: String, path: ChargePath, scopes: [ScopeRef],
        period: PeriodIndex, at now: Date
    ) -> JSONValue {
        var remaining: [String: JSONValue] = [:]
        for target in scopes {
            let caps = capLedger.caps(on: target)
            guard !caps.isEmpty else { continue }
            let tightest = caps.map { capLedger.remaining($0, on: scopes, during: period) }.min()!
            remaining[target.scope.rawValue] = .string(tightest.decimalString)
        }
        return [
            "allowed": true, "receiptId": .string(receiptId), "cost": .string(cost.decimalString),
            "currency": .string(currency), "sessionId": .string(path.sessionId), "remaining": .object(remaining),
            "at": .string(Timestamp.format(now)),
        ]
    }
}
