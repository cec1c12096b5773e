import Foundation
import TollgateCore
import TollgateIngest
import TollgateJSON
import TollgatePricing
import TollgateStorage

/// Two-phase metering for calls whose cost is known only after they ran: `meter.authorize` holds an estimate
/// against every cap on the path (holds count against caps like calls in flight do), `meter.commit` charges
/// the actual usage in place of the hold, `meter.release` gives it back, and a hold that is neither expires.
///
/// Holds are stored, so after a restart they are held again until committed, released or expired. A commit
/// is charged under the idempotency key `commit:<reservationId>`, so a commit recorded just before a crash is
/// found again and never charged twice.
extension TenantActor {
    static func commitKey(_ reservationId: String) -> String { "commit:\(reservationId)" }

    /// What a hold of `tool` is when no estimate is given: the product catalog's estimate for it, else one call.
    static func catalogEstimate(_ tool: String, of product: Product?) -> RatedEvent {
        let estimate = product?.tool(tool)?.estimate ?? Product.Estimate()
        return RatedEvent(
            tool: tool, quantity: estimate.quantity, inputTokens: estimate.inputTokens,
            outputTokens: estimate.outputTokens, reasoningTokens: estimate.reasoningTokens,
            durationMs: estimate.durationMs)
    }

    /// `meter.authorize`: holds the estimate's price against every cap on the path. `params` are the request's,
    /// compared (with the method) when the key comes again: a replay answers exactly what the first call did.
    /// Without an `estimate`, the product's catalog estimate for the tool is held (one call of no usage when it has
    /// none).
    public func authorize(
        tool: String, idempotencyKey key: String, sessionId: String, estimate: RatedEvent?, ttlMs: Int64?,
        graph: UsageEvent.Graph = UsageEvent.Graph(), product: String? = nil, params: JSONValue, credentialId: String
    ) async throws(TollgateError) -> Answer<Hold> {
        let credential = try meterCredential(credentialId)
        let call = KeyedCall(key: key, method: .meterAuthorize, params: params, principal: credential.agentId)
        // Not the hot path, and a write follows anyway: a key recorded before this actor started (or forgotten
        // by memory) is looked up before anything is held, so its retry is replayed, never refused by the very
        // hold it made.
        return try await keyed(call) { () async throws(TollgateError) in
            try await hold(
                tool: tool, call: call, sessionId: sessionId, estimate: estimate, ttlMs: ttlMs, graph: graph,
                product: product, credential: credential)
        }
    }

    private func hold(
        tool: String, call: KeyedCall, sessionId: String, estimate: RatedEvent?, ttlMs: Int64?,
        graph: UsageEvent.Graph, product: String?, credential: Credential
    ) async throws(TollgateError) -> Answer<Hold> {
        let caller = try directory.agent(credential.agentId)
        try await ensureSession(sessionId, for: caller, openedAt: now)
        let at = sessions.callTime(in: sessionId, now: now)
        let pricing = try directory.pricing(for: credential, product: product, at: at)
        try pricing.check(tool: tool)
        var event = estimate ?? Self.catalogEstimate(tool, of: pricing.product)
        event.agentId = pricing.agent.id
        event.sessionId = sessionId
        let rating = try await rating(for: pricing.subscription, plan: pricing.plan, at: at)
        // The estimate is priced where the running totals stand now, and not folded into them: only the
        // commit's actual usage is.
        let amount: Money
        do { amount = max(.zero, try rating.quote(event).price) } catch {
            throw .validation(field: "estimate", rule: "small enough that the price stays within range")
        }
        let path = pricing.path(sessionId: sessionId, credentialId: credential.id)
        // In flight in its session until it is in the book: a close that comes meanwhile waits for it, then
        // releases it with the session's other holds (it would otherwise outlive its session's cap).
        try sessions.callStarted(in: sessionId, at: at)
        defer { callEnded(in: sessionId, recorded: nil) }
        // Check and hold in one turn: no other call can run between the two.
        let windows = directory.capWindows(path.customerId, at: at)
        if let refusal = creditRefusal(amount, path: path, currency: pricing.plan.currency, at: at) {
            throw .budgetExceeded(refusal, currency: pricing.plan.currency)
        }
        if let refusal = capLedger.reserve(amount, on: path.scopes, during: windows) {
            raise(CapAlerts.refused(refusal, path: path, during: windows, marks: &marks))
            throw .budgetExceeded(refusal, currency: pricing.plan.currency)
        }
        let ttl = min(ttlMs ?? Int64(configuration.reservationTTLMs), Int64(configuration.reservationTTLMs))
        var record = ReservationRecord(
            tenantId: tenantId, id: Identifiers.make(.reservation, at: at), idempotencyKey: call.key, path: path,
            tool: event.tool, held: amount, currency: pricing.plan.currency, createdAt: at,
            expiresAt: at.addingTimeInterval(Double(ttl) / 1000))
        record.parentInvocationId = graph.parentInvocationId
        record.retryCount = graph.retryCount
        record.parallel = graph.parallel
        record.productId = pricing.product?.id
        let answer = Answer(Hold(reservation: record))
        let taken: IdempotencyRecord?
        do {
            taken = try await storage("storing a hold") { () async throws(StorageError) in
                try await services.store.insertReservation(
                    record, idempotency: idempotencyRecord(call, answer: answer.json, at: at))
            }
        } catch {
            capLedger.release(amount, on: path.scopes)
            throw error
        }
        if let taken {
            // The key was recorded meanwhile (by another process sharing the store): that answer stands.
            capLedger.release(amount, on: path.scopes)
            return Answer(replay: try keys.replay(stored: taken, asking: call))
        }
        holds.insert(record)
        return answer
    }

    /// `meter.commit`: charges `usage` in place of the hold, under the key `commit:<reservationId>`.
    public func commitReservation(
        _ id: String, usage: RatedEvent, status: String?, params: JSONValue, credentialId: String
    ) async throws(TollgateError) -> Answer<Receipt> {
        let credential = try meterCredential(credentialId)
        let call = KeyedCall(
            key: Self.commitKey(id), method: .meterCommit, params: params, principal: credential.agentId)
        return try await keyed(call) { () async throws(TollgateError) in
            let reservation = try await committable(id, agentId: credential.agentId)
            var event = usage
            event.tool = reservation.tool
            var request = MeterRequest(
                event: event, idempotencyKey: call.key, sessionId: reservation.path.sessionId, status: status,
                params: params, method: .meterCommit)
            // Priced by the subscription the hold was made under.
            request.product = reservation.productId
            return try await charge(request, call: call, credential: credential, settling: reservation)
        }
    }

    /// `meter.release`: gives the hold back. Releasing a hold that was released or expired already answers the
    /// same; with an idempotency key, the first answer is replayed.
    public func releaseReservation(_ id: String, call: KeyedCall?, credentialId: String) async throws(TollgateError)
        -> Answer<Release>
    {
        let credential = try meterCredential(credentialId)
        return try await keyed(call) { () async throws(TollgateError) in
            guard let reservation = holds[id] else {
                let stored = try await storedReservation(id, agentId: credential.agentId)
                switch stored.state {
                case .committed: throw .conflict("reservation \(id) was committed")
                case .held: throw .conflict("reservation \(id) is being committed")
                case .released, .expired:
                    let answer = Answer(Release(reservationId: id, state: stored.state))
                    guard call != nil else { return answer }
                    return try await write(.answerOnly, answering: answer, for: call, "storing a release's answer")
                        .answer(answer)
                }
            }
            guard reservation.path.agentId == credential.agentId else { throw .notFound("no reservation \(id)") }
            let answer = Answer(Release(reservationId: id, state: .released))
            if let replay = try await end(reservation, as: .released, answering: answer, for: call) {
                return Answer(replay: replay)
            }
            return answer
        }
    }

    /// The reservation `id` of `agentId` as a commit needs it: held (an expired one is expired on the spot,
    /// CONFLICT). One committed already, under its commit key, was replayed before this is asked.
    private func committable(_ id: String, agentId: String) async throws(TollgateError) -> ReservationRecord {
        if let reservation = holds[id] {
            guard reservation.path.agentId == agentId else { throw .notFound("no reservation \(id)") }
            if reservation.expiresAt <= now {
                try await end(reservation, as: .expired)
                throw .conflict(
                    "reservation \(id) expired at \(Timestamp.format(reservation.expiresAt)); its hold was released")
            }
            return reservation
        }
        let stored = try await storedReservation(id, agentId: agentId)
        switch stored.state {
        case .committed: throw .conflict("reservation \(id) was committed")
        case .released: throw .conflict("reservation \(id) was released")
        case .expired: throw .conflict("reservation \(id) expired; its hold was released")
        case .held: throw .inProgress
        }
    }

    /// A reservation not held in memory, from storage; another agent's is NOT_FOUND.
    private func storedReservation(_ id: String, agentId: String) async throws(TollgateError) -> ReservationRecord {
        let stored = try await storage("reading a reservation") { () async throws(StorageError) in
            try await services.store.reservation(tenantId: tenantId, id: id)
        }
        guard let stored, stored.path.agentId == agentId else { throw .notFound("no reservation \(id)") }
        return stored
    }

    /// Stores the end of a hold (with the answer of the keyed call that ended it), then gives it back: each hold
    /// is given back exactly once, by whoever takes it out of the book first. Returns the replay when the call's
    /// key turned out taken (nothing was stored, and the hold stands).
    @discardableResult
    func end(
        _ reservation: ReservationRecord, as state: ReservationRecord.State,
        answering answer: some JSONRepresentable = JSONValue.null, for call: KeyedCall? = nil
    ) async throws(TollgateError) -> JSONValue? {
        guard holds.remove(reservation.id) != nil else { return nil }
        let written: Written
        do {
            written = try await write(
                .finishReservation(tenantId: tenantId, id: reservation.id, state: state, receiptId: nil),
                answering: answer, for: call, "ending a hold")
        } catch {
            holds.insert(reservation)
            throw error
        }
        if case .replay(let replay) = written {
            holds.insert(reservation)
            return replay
        }
        capLedger.release(reservation.held, on: reservation.path.scopes)
        return nil
    }

    /// A commit of `reservation` found recorded already under its key (by an earlier run, or before a commit's
    /// charge and its hold's end were one transaction): make sure the hold reads as committed.
    func settled(_ reservation: ReservationRecord, receiptId: String?) async {
        do {
            _ = try await storage("marking a reservation committed") { () async throws(StorageError) in
                try await services.store.write(
                    .finishReservation(tenantId: tenantId, id: reservation.id, state: .committed, receiptId: receiptId))
            }
        } catch {
            // The charge is recorded under the commit key; after a restart the hold is recognised as committed.
        }
    }

    /// Expires the holds whose time is up. Called by the sweep; holds of closing sessions are released by the
    /// close itself.
    func expireReservations() async {
        for reservation in holds.expired(at: now) {
            _ = try? await end(reservation, as: .expired)
        }
    }
}
