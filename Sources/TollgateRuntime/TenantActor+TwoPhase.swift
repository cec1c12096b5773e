import Foundation
import TollgateCore
import TollgatePricing
import TollgateStorage

/// Two-phase metering for calls whose cost is known only after they ran: `meter.authorize` holds an estimate
/// against every cap on the path (holds count against caps like calls in flight do), `meter.commit` charges
/// the actual usage in place of the hold, `meter.release` gives it back, and a hold that is neither expires.
///
/// Holds are stored, so after a restart they are held again until committed, released or expired. A commit
/// is a `meter.verify` of the actual usage under the idempotency key `commit:<reservationId>`, so a commit
/// recorded just before a crash is found again and never charged twice.
extension TenantActor {
    static func commitKey(_ reservationId: String) -> String { "commit:\(reservationId)" }

    /// `meter.authorize`: holds the estimate's price against every cap on the path. `params` are the request's,
    /// compared (with the method) when the key comes again: a replay answers exactly what the first call did.
    public func authorize(
        tool: String, idempotencyKey key: String, sessionId: String, estimate: RatedEvent,
        ttlMs: Int64?, params: JSONValue, credentialId: String
    )
        async throws(TollgateError) -> JSONValue
    {
        let method = "meter.authorize"
        let credential = try meterCredential(credentialId)
        let fingerprint = Fingerprint.make(params: params, agentId: credential.agentId)
        if let replay = try recall(key, method: method, fingerprint: fingerprint) { return replay }
        recentKeys.set(key, .inFlight(method: method, fingerprint: fingerprint))
        do {
            // Not the hot path, and a write follows anyway: a key recorded before this actor started (or
            // forgotten by memory) is looked up before anything is held, so its retry is replayed, never refused
            // by the very hold it made.
            if let stored = try await storedAnswer(key) {
                return try replay(stored: stored, asking: method, fingerprint)
            }
            let answer = try await hold(
                tool: tool, key: key, sessionId: sessionId, estimate: estimate, ttlMs: ttlMs,
                fingerprint: fingerprint, credential: credential)
            recentKeys.set(key, .done(method: method, fingerprint: fingerprint, result: answer))
            return answer
        } catch {
            recentKeys.removeIfInFlight(key)
            throw error
        }
    }

    private func hold(
        tool: String, key: String, sessionId: String, estimate: RatedEvent, ttlMs: Int64?,
        fingerprint: String, credential: Credential
    ) async throws(TollgateError) -> JSONValue {
        let caller = try agent(credential.agentId)
        try await ensureSession(sessionId, for: caller, openedAt: services.clock.now())
        let now = callTime(in: sessionId)
        let (agent, team, subscription, plan) = try pricing(for: credential, at: now)
        var event = estimate
        event.agentId = agent.id
        event.sessionId = sessionId
        let rating = try await rating(for: subscription, plan: plan, at: now)
        // The estimate is priced where the running totals stand now, and not folded into them: only the
        // commit's actual usage is.
        let amount: Money
        do { amount = max(.zero, try rating.quote(event).price) } catch {
            throw .validation(field: "estimate", rule: "small enough that the price stays within range")
        }
        let path = ChargePath(
            customerId: team.customerId, teamId: team.id, agentId: agent.id, sessionId: sessionId,
            credentialId: credential.id)
        // In flight in its session until it is in the book: a close that comes meanwhile waits for it, then
        // releases it with the session's other holds (it would otherwise outlive its session's cap).
        try callStarted(in: sessionId, at: now)
        defer { callEnded(in: sessionId, recorded: nil) }
        // Check and hold in one turn: no other call can run between the two.
        if let refusal = capLedger.reserve(amount, on: path.scopes, at: now) {
            capReached(refusal, path: path, at: now)
            throw .budgetExceeded(refusal, currency: plan.currency)
        }
        let ttl = min(ttlMs ?? limits.reservationTTLMs, limits.reservationTTLMs)
        let record = ReservationRecord(
            tenantId: tenantId, id: Identifiers.make(.reservation, at: now),
            idempotencyKey: key, path: path, tool: event.tool, held: amount,
            currency: plan.currency, createdAt: now,
            expiresAt: now.addingTimeInterval(Double(ttl) / 1000))
        let answer = Self.answer(record)
        let idempotency = IdempotencyRecord(
            tenantId: tenantId, key: key, method: "meter.authorize",
            params: fingerprint, result: JSONCodec.string(answer), createdAt: now)
        let taken: IdempotencyRecord?
        do { taken = try await services.store.insertReservation(record, idempotency: idempotency) } catch {
            capLedger.release(amount, on: path.scopes)
            throw .unavailable("storage is unavailable; nothing was held")
        }
        if let taken {
            // The key was recorded meanwhile (by another process sharing the store): that answer stands.
            capLedger.release(amount, on: path.scopes)
            return try replay(stored: taken, asking: "meter.authorize", fingerprint)
        }
        holds.insert(record)
        return answer
    }

    /// `meter.commit`: charges `usage` in place of the hold.
    public func commitReservation(
        _ id: String, usage: RatedEvent, status: String?, params: JSONValue,
        credentialId: String
    ) async throws(TollgateError) -> JSONValue {
        let credential = try meterCredential(credentialId)
        let reservation = try await committable(id, agentId: credential.agentId)
        var event = usage
        event.tool = reservation.tool
        let request = MeterRequest(
            event: event, idempotencyKey: Self.commitKey(id), sessionId: reservation.path.sessionId,
            status: status, params: params, method: "meter.commit")
        // A retry of a commit that was recorded: the ledger finds the commit key and replays its answer.
        return try await verify(
            request, credentialId: credentialId, settling: reservation.state == .held ? reservation : nil)
    }

    /// `meter.release`: gives the hold back. Releasing a hold that was released or expired already is a no-op.
    public func releaseReservation(_ id: String, credentialId: String) async throws(TollgateError) -> JSONValue {
        let credential = try meterCredential(credentialId)
        guard let reservation = holds[id] else {
            let stored = try await storedReservation(id, agentId: credential.agentId)
            switch stored.state {
            case .committed: throw .conflict("reservation \(id) was committed")
            case .held: throw .conflict("reservation \(id) is being committed")
            case .released, .expired:
                return ["reservationId": .string(id), "released": true, "state": .string(stored.state.rawValue)]
            }
        }
        guard reservation.path.agentId == credential.agentId else { throw .notFound("no reservation \(id)") }
        try await finish(reservation, as: .released)
        return ["reservationId": .string(id), "released": true, "state": "released"]
    }

    /// The reservation `id` of `agentId` as a commit needs it: held (an expired one is expired on the spot,
    /// CONFLICT), or committed already (a retry, which `verify` replays).
    private func committable(_ id: String, agentId: String) async throws(TollgateError) -> ReservationRecord {
        if let reservation = holds[id] {
            guard reservation.path.agentId == agentId else { throw .notFound("no reservation \(id)") }
            if reservation.expiresAt <= services.clock.now() {
                try await finish(reservation, as: .expired)
                throw .conflict(
                    "reservation \(id) expired at \(Timestamp.format(reservation.expiresAt)); its hold was released")
            }
            return reservation
        }
        let stored = try await storedReservation(id, agentId: agentId)
        switch stored.state {
        case .committed: return stored
        case .released: throw .conflict("reservation \(id) was released")
        case .expired: throw .conflict("reservation \(id) expired; its hold was released")
        case .held: throw .inProgress
        }
    }

    /// A reservation not held in memory, from storage; another agent's is NOT_FOUND.
    private func storedReservation(_ id: String, agentId: String) async throws(TollgateError) -> ReservationRecord {
        let stored: ReservationRecord?
        do { stored = try await services.store.reservation(tenantId: tenantId, id: id) } catch {
            throw .unavailable("storage is unavailable")
        }
        guard let stored, stored.path.agentId == agentId else { throw .notFound("no reservation \(id)") }
        return stored
    }

    /// Stores the end of a hold, then gives it back: each hold is given back exactly once, by whoever takes it
    /// out of the book first.
    func finish(_ reservation: ReservationRecord, as state: ReservationRecord.State) async throws(TollgateError) {
        guard holds.remove(reservation.id) != nil else { return }
        do {
            _ = try await services.store.finishReservation(
                tenantId: tenantId, id: reservation.id, state: state, receiptId: nil)
        } catch {
            holds.insert(reservation)
            throw .unavailable("storage is unavailable; the hold stands")
        }
        capLedger.release(reservation.held, on: reservation.path.scopes)
    }

    /// After the commit of `reservation` was recorded (its hold already given back): store that it is done.
    func settled(_ reservation: ReservationRecord, receiptId: String?) async {
        do {
            _ = try await services.store.finishReservation(
                tenantId: tenantId, id: reservation.id, state: .committed,
                receiptId: receiptId)
        } catch {
            // The charge is recorded under the commit key; after a restart the hold is recognised as committed.
            services.logger.error(
                "marking a reservation committed failed",
                metadata: ["reservation": "\(reservation.id)", "error": "\(error)"])
        }
    }

    /// Expires the holds whose time is up. Called by the sweeper; holds of closing sessions are released by
    /// the close itself.
    func expireReservations() async {
        for reservation in holds.expired(at: services.clock.now()) {
            try? await finish(reservation, as: .expired)
        }
    }

    /// The answer to `meter.authorize`, stored with its key and replayed unchanged.
    static func answer(_ reservation: ReservationRecord) -> JSONValue {
        [
            "reservationId": .string(reservation.id), "held": .string(reservation.held.decimalString),
            "currency": .string(reservation.currency), "expiresAt": .string(Timestamp.format(reservation.expiresAt)),
            "sessionId": .string(reservation.path.sessionId), "state": .string(reservation.state.rawValue),
        ]
    }
}
