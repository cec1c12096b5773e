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
        if let replay = try recall(key, fingerprint) { return replay }

        // Claim the key before the first suspension point: a concurrent retry now sees IN_PROGRESS.
        // Keys recorded before this actor started (another process, or evicted from memory) are caught
        // by the ledger writer, inside the very transaction that would record the charge.
        recentKeys.set(key, .inFlight(fingerprint: fingerprint))
        do {
            return try await charge(request, credential: credential, fingerprint: fingerprint, settling: reservation)
        } catch {
            // Nothing was recorded under this key by this call: let a retry try afresh.
            recentKeys.removeIfInFlight(key)
            throw error
        }
    }

    /// The answer to a key found in storage: its replay, or a mismatch.
    private func replay(stored: IdempotencyRecord, fingerprint: String) throws(TollgateError) -> JSONValue {
        guard let result = try? JSONCodec.parse(stored.result) else {
            recentKeys.remove(stored.key)
            throw .unavailable("stored answer unreadable")
        }
        recentKeys.set(stored.key, .done(fingerprint: stored.params, result: result))
        return try replay(storedFingerprint: stored.params, result: result, fingerprint: fingerprint)
    }

    /// A replay, a mismatch or `IN_PROGRESS` from memory; nil when the key is not known here.
    private func recall(_ key: String, _ fingerprint: String) throws(TollgateError) -> JSONValue? {
        switch recentKeys[key] {
        case nil: return nil
        case .inFlight?: throw .inProgress
        case .done(let storedFingerprint, let result)?:
            return try replay(storedFingerprint: storedFingerprint, result: result, fingerprint: fingerprint)
        }
    }

    private func replay(storedFingerprint: String, result: JSONValue, fingerprint: String) throws(TollgateError) -> JSONValue {
        guard storedFingerprint == fingerprint else {
            throw .idempotencyMismatch(fields: Fingerprint.differingFields(storedFingerprint, fingerprint))
        }
        guard case .object(var object) = result else { return result }
        object["replayed"] = true
        return .object(object)
    }

    private func charge(_ request: MeterRequest, credential: Credential, fingerprint: String, settling reservation: ReservationRecord?)
        async throws(TollgateError) -> JSONValue {
        let now = services.clock.now()
        let (agent, team, subscription, plan) = try pricing(for: credential, at: now)
        var event = request.event
        event.agentId = agent.id
        event.sessionId = request.sessionId
        try await ensureSession(request.sessionId, for: agent)
        try await loadCustomerMargin(team.customerId, at: now)
        let rating = try await rating(for: subscription, plan: plan, at: now)
        // From here to the ledger submit there is no suspension point: the session's activity, the quote, the
        // cap check and folding the call into the running totals happen in one actor turn.
        try callStarted(in: request.sessionId, at: now)
        // Every way out of here ends the call in its session exactly once: recorded below, or not on any other exit.
        var ended = false
        defer { if !ended { callEnded(in: request.sessionId, recorded: nil) } }
        let quote: PlanRating.Quote
        do { quote = try rating.quote(event) } catch {
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
            guard reservations.removeValue(forKey: reservation.id) != nil else {
                throw .conflict("reservation \(reservation.id) is no longer held")
            }
            capLedger.release(reservation.held, on: reservation.path.scopes)
        }
        func restoreReservation() {
            guard let reservation else { return }
            capLedger.hold(reservation.held, on: reservation.path.scopes)
            reservations[reservation.id] = reservation
        }
        // Check and hold in one synchronous step: no other call can run between the two.
        if let refusal = capLedger.reserve(cost, on: scopes, at: now) {
            restoreReservation()
            capReached(refusal, path: path, at: now)
            // Before refusing, make sure this is not the retry of a call answered before a restart: that one
            // was already charged and must be replayed, not refused. Only refusals pay for this look-up.
            let stored: IdempotencyRecord?
            do { stored = try await services.store.idempotencyRecord(tenantId: tenantId, key: request.idempotencyKey) } catch {
                services.logger.error("idempotency look-up failed", metadata: ["tenant": "\(tenantId)", "error": "\(error)"])
                throw .unavailable("storage is unavailable; nothing was recorded")
            }
            if let stored { return try replay(stored: stored, fingerprint: fingerprint) }
            throw .budgetExceeded(refusal, currency: plan.currency)
        }
        do { try rating.apply(event, quote: quote) } catch {
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
        let idempotency = IdempotencyRecord(tenantId: tenantId, key: request.idempotencyKey, method: "meter.verify",
                                            params: fingerprint, result: JSONCodec.string(result), createdAt: now)
        let outcome: CommitOutcome
        do {
            outcome = try await services.ledger.submit(LedgerEntry(charge: record, idempotency: idempotency))
        } catch {
            capLedger.release(cost, on: scopes)
            restoreReservation()
            forgetRating(of: subscription.id)
            throw error
        }
        switch outcome {
        case .recorded:
            capLedger.commit(cost, on: scopes, at: now)
            // Counted in the session now, so the guards below see its totals with this call.
            callEnded(in: request.sessionId, recorded: record)
            ended = true
            capWarnings(after: cost, path: path, scopes: scopes, period: period, at: now)
            guardsAfter(record)
            if let reservation { await settled(reservation, receiptId: receiptId) }
            recentKeys.set(request.idempotencyKey, .done(fingerprint: fingerprint, result: result))
            return result
        case .duplicate(let stored):
            // Charged by an earlier call with this key: nothing new was written, so give the hold back.
            capLedger.release(cost, on: scopes)
            forgetRating(of: subscription.id)
            if let reservation { await settled(reservation, receiptId: nil) }
            return try replay(stored: stored, fingerprint: fingerprint)
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
