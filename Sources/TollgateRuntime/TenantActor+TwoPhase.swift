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

    /// `meter.authorize`.
    public func authorize(tool: String, idempotencyKey: String, sessionId: String, estimate: RatedEvent,
                          ttlMs: Int64?, credentialId: String) async throws(TollgateError) -> JSONValue {
        let credential = try meterCredential(credentialId)
        if let existing = reservations.values.first(where: { $0.idempotencyKey == idempotencyKey }) {
            guard existing.path.agentId == credential.agentId else {
                throw .idempotencyMismatch(fields: ["agentId"])
            }
            return Self.answer(existing, replayed: true)
        }
        let now = services.clock.now()
        let (agent, team, subscription, plan) = try pricing(for: credential, at: now)
        var event = estimate
        event.agentId = agent.id
        event.sessionId = sessionId
        try await ensureSession(sessionId, for: agent)
        let rating = try await rating(for: subscription, plan: plan, at: now)
        // The estimate is priced where the running totals stand now, and not folded into them: only the
        // commit's actual usage is.
        let amount: Money
        do { amount = max(.zero, try rating.quote(event).price) } catch {
            throw .validation(field: "estimate", rule: "small enough that the price stays within range")
        }
        let path = ChargePath(customerId: team.customerId, teamId: team.id, agentId: agent.id, sessionId: sessionId,
                              credentialId: credential.id)
        try recordActivity(in: sessionId, at: now)
        if let refusal = capLedger.reserve(amount, on: path.scopes, at: now) {
            capReached(refusal, path: path, at: now)
            throw .budgetExceeded(refusal, currency: plan.currency)
        }
        let ttl = min(ttlMs ?? limits.reservationTTLMs, limits.reservationTTLMs)
        let record = ReservationRecord(tenantId: tenantId, id: Identifiers.make(.reservation, at: now),
                                       idempotencyKey: idempotencyKey, path: path, tool: event.tool, held: amount,
                                       currency: plan.currency, createdAt: now,
                                       expiresAt: now.addingTimeInterval(Double(ttl) / 1000))
        let stored: ReservationRecord
        do { stored = try await services.store.insertReservation(record) } catch {
            capLedger.release(amount, on: path.scopes)
            throw .unavailable("storage is unavailable; nothing was held")
        }
        guard stored.id == record.id else {
            // The key was used before (before a restart, or by a call racing this one): that hold stands.
            capLedger.release(amount, on: path.scopes)
            guard stored.path.agentId == agent.id else { throw .idempotencyMismatch(fields: ["agentId"]) }
            return Self.answer(stored, replayed: true)
        }
        reservations[record.id] = record
        return Self.answer(record, replayed: false)
    }

    /// `meter.commit`: charges `usage` in place of the hold.
    public func commitReservation(_ id: String, usage: RatedEvent, status: String?, params: JSONValue,
                                  credentialId: String) async throws(TollgateError) -> JSONValue {
        let credential = try meterCredential(credentialId)
        let reservation = try await committable(id, agentId: credential.agentId)
        var event = usage
        event.tool = reservation.tool
        let request = MeterRequest(event: event, idempotencyKey: Self.commitKey(id), sessionId: reservation.path.sessionId,
                                   status: status, params: params)
        // A retry of a commit that was recorded: the ledger finds the commit key and replays its answer.
        return try await verify(request, credentialId: credentialId, settling: reservation.state == .held ? reservation : nil)
    }

    /// `meter.release`: gives the hold back. Releasing a hold that was released or expired already is a no-op.
    public func releaseReservation(_ id: String, credentialId: String) async throws(TollgateError) -> JSONValue {
        let credential = try meterCredential(credentialId)
        guard let reservation = reservations[id] else {
            let stored = try await storedReservation(id, agentId: credential.agentId)
            switch stored.state {
            case .committed: throw .conflict("reservation \(id) was committed")
            case .held: throw .conflict("reservation \(id) is being committed")
            case .released, .expired: return ["reservationId": .string(id), "released": true, "state": .string(stored.state.rawValue)]
            }
        }
        guard reservation.path.agentId == credential.agentId else { throw .notFound("no reservation \(id)") }
        try await finish(reservation, as: .released)
        return ["reservationId": .string(id), "released": true, "state": "released"]
    }

    /// The reservation `id` of `agentId` as a commit needs it: held (an expired one is expired on the spot,
    /// CONFLICT), or committed already (a retry, which `verify` replays).
    private func committable(_ id: String, agentId: String) async throws(TollgateError) -> ReservationRecord {
        if let reservation = reservations[id] {
            guard reservation.path.agentId == agentId else { throw .notFound("no reservation \(id)") }
            if reservation.expiresAt <= services.clock.now() {
                try await finish(reservation, as: .expired)
                throw .conflict("reservation \(id) expired at \(Timestamp.format(reservation.expiresAt)); its hold was released")
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

    /// Stores the end of a hold, then gives it back.
    private func finish(_ reservation: ReservationRecord, as state: ReservationRecord.State) async throws(TollgateError) {
        guard reservations.removeValue(forKey: reservation.id) != nil else { return }
        do {
            _ = try await services.store.finishReservation(tenantId: tenantId, id: reservation.id, state: state, receiptId: nil)
        } catch {
            reservations[reservation.id] = reservation
            throw .unavailable("storage is unavailable; the hold stands")
        }
        capLedger.release(reservation.held, on: reservation.path.scopes)
    }

    /// After the commit of `reservation` was recorded (its hold already given back): store that it is done.
    func settled(_ reservation: ReservationRecord, receiptId: String?) async {
        do {
            _ = try await services.store.finishReservation(tenantId: tenantId, id: reservation.id, state: .committed,
                                                            receiptId: receiptId)
        } catch {
            // The charge is recorded under the commit key; after a restart the hold is recognised as committed.
            services.logger.error("marking a reservation committed failed", metadata: ["reservation": "\(reservation.id)", "error": "\(error)"])
        }
    }

    /// Expires the holds whose time is up, and those of sessions that closed. Called by the sweeper.
    func expireReservations() async {
        let now = services.clock.now()
        for reservation in reservations.values where reservation.expiresAt <= now || sessions[reservation.path.sessionId] == nil {
            try? await finish(reservation, as: reservation.expiresAt <= now ? .expired : .released)
        }
    }

    static func answer(_ reservation: ReservationRecord, replayed: Bool) -> JSONValue {
        var fields: [String: JSONValue] = [
            "reservationId": .string(reservation.id), "held": .string(reservation.held.decimalString),
            "currency": .string(reservation.currency), "expiresAt": .string(Timestamp.format(reservation.expiresAt)),
            "sessionId": .string(reservation.path.sessionId), "state": .string(reservation.state.rawValue),
        ]
        if replayed { fields["replayed"] = true }
        return .object(fields)
    }
}
