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
        async throws(TollgateError) -> JSONValue {
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

    private func charge(_ request: MeterRequest, credential: Credential, fingerprint: String,
                        settling reservation: ReservationRecord?) async throws(TollgateError) -> JSONValue {
        let caller = try agent(credential.agentId)
        try await ensureSession(request.sessionId, for: caller, openedAt: services.clock.now())
        let now = callTime(in: request.sessionId)
        let (agent, team, subscription, plan) = try pricing(for: credential, at: now)
        var event = request.event
        event.agentId = agent.id
        event.sessionId = request.sessionId
        try await loadCustomerMargin(team.customerId, at: now)
        let rating = try await rating(for: subscription, plan: plan, at: now)
        // From here to the ledger submit there is no suspension point: the session's activity, the quote, the
        // cap check and folding the call into the running totals happen in one actor turn.
        try callStarted(in: request.sessionId, at: now)
        // Every way out of here ends the call in its session exactly once: recorded below, or not on any other exit.
        var ended = false
        defer { if !ended { callEnded(in: request.sessionId, recorded: nil) } }
        let quote: PlanRating.Quote
        do { quote = try rating.admitted.quote(event) } catch {
            throw .validation(field: "quantity", rule: "small enough that the price stays within range")
        }
        let cost = quote.price
        let path = ChargePath(customerId: team.customerId, teamId: team.id, agentId: agent.id,
                              sessionId: request.sessionId, credentialId: credential.id)
        let scopes = path.scopes
        try marginGate(path: path, at: now)
        // A reservation being committed gives its hold back in this same turn, so the actual cost is checked
        // against the caps as if the estimate had never been held; if it does not fit, the hold is restored.
        if let reservation {
            guard holds.remove(reservation.id) != nil else {
                throw .conflict("reservation \(reservation.id) is no longer held")
            }
            capLedger.release(reservation.held, on: reservation.path.scopes)
        }
        func restoreReservation() {
            guard let reservation else { return }
            capLedger.hold(reservation.held, on: reservation.path.scopes)
            holds.insert(reservation)
        }
        // Check and hold in one synchronous step: no other call can run between the two.
        if let refusal = capLedger.reserve(cost, on: scopes, at: now) {
            restoreReservation()
            capReached(refusal, path: path, at: now)
            // Before refusing, make sure this is not the retry of a call answered before a restart: that one
            // was already charged and must be replayed, not refused. Only refusals pay for this look-up.
            if let stored = try await storedAnswer(request.idempotencyKey) {
                return try replay(stored: stored, asking: request.method, fingerprint)
            }
            throw .budgetExceeded(refusal, currency: plan.currency)
        }
        let admission: UInt64
        do { admission = try rating.admit(event, quote: quote) } catch {
            capLedger.release(cost, on: scopes)
            restoreReservation()
            throw .validation(field: "quantity", rule: "small enough that the price stays within range")
        }
        let receiptId = Identifiers.make(.receipt)
        // The month and day of `now`, worked out once for the receipt's and the warnings' cap arithmetic.
        let period = PeriodIndex(now)
        var result = receipt(receiptId: receiptId, cost: cost, currency: plan.currency, path: path, scopes: scopes,
                             period: period, at: now)
        if let reservation, case .object(var fields) = result {
            fields["reservationId"] = .string(reservation.id)
            fields["held"] = .string(reservation.held.decimalString)
            result = .object(fields)
        }
        let record = ChargeRecord(
            receiptId: receiptId, tenantId: tenantId, path: path, subscriptionId: subscription.id, planId: plan.id,
            planVersion: plan.version, tool: event.tool, quantity: event.quantity, inputTokens: event.inputTokens,
            outputTokens: event.outputTokens, reasoningTokens: event.reasoningTokens, durationMs: event.durationMs,
            status: request.status, cost: cost, providerCost: event.providerCost, currency: plan.currency,
            idempotencyKey: request.idempotencyKey, at: now)
        let idempotency = IdempotencyRecord(tenantId: tenantId, key: request.idempotencyKey, method: request.method,
                                            params: fingerprint, result: JSONCodec.string(result), createdAt: now)
        let outcome: CommitOutcome
        do {
            outcome = try await services.ledger.submit(LedgerEntry(charge: record, idempotency: idempotency))
        } catch {
            capLedger.release(cost, on: scopes)
            restoreReservation()
            rating.dropped(admission)
            throw error
        }
        switch outcome {
        case .recorded:
            rating.recorded(admission)
            capLedger.commit(cost, on: scopes, at: now)
            // Counted in the session now, so the guards below see its totals with this call.
            callEnded(in: request.sessionId, recorded: record)
            ended = true
            capWarnings(after: cost, path: path, scopes: scopes, period: period, at: now)
            guardsAfter(record)
            if let reservation { await settled(reservation, receiptId: receiptId) }
            recentKeys.set(request.idempotencyKey,
                           .done(method: request.method, fingerprint: fingerprint, result: result))
            return result
        case .duplicate(let stored):
            // Charged by an earlier call with this key: nothing new was written, so give the hold back.
            capLedger.release(cost, on: scopes)
            rating.dropped(admission)
            if let reservation { await settled(reservation, receiptId: nil) }
            return try replay(stored: stored, asking: request.method, fingerprint)
        }
    }

    /// The answer to an accepted call. `remaining` names each capped scope on the path with what is left
    /// under its tightest cap once this call is counted.
    private func receipt(receiptId: String, cost: Money, currency: String, path: ChargePath, scopes: [ScopeRef],
                         period: PeriodIndex, at now: Date) -> JSONValue {
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
