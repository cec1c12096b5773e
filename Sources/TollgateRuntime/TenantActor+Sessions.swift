import Foundation
import TollgateCore
import TollgateJSON
import TollgateStorage

/// Sessions: opened explicitly (`session.open`) or by the first call naming them; IDLE after `idleAfter`;
/// CLOSED by `session.close` or after `sessionTimeout` without a call, which writes the final billing
/// record and raises `session_closed`. The state is `SessionTable`'s; this carries out what it decides.
extension TenantActor {
    /// Makes sure the session `id` of `agent` is open here: held already, loaded from storage, or opened now, at
    /// `openedAt`. Refuses a closed session (CONFLICT) and another agent's (FORBIDDEN). Every await is followed
    /// by a fresh look, since a concurrent call may have opened or loaded it meanwhile.
    func ensureSession(_ id: String, for agent: Agent, openedAt: Date, metadata: String? = nil)
        async throws(TollgateError)
    {
        if try holdsOpen(id, agent: agent) { return }
        var stored = try await storedSession(id)
        if try holdsOpen(id, agent: agent) { return }
        if stored == nil {
            guard !sessions.isFull else {
                throw .conflict(
                    "the tenant has \(sessions.openMax) open sessions, the most it may have; close some first")
            }
            let team = try directory.team(agent.teamId)
            let record = SessionRecord(
                tenantId: tenantId, id: id, agentId: agent.id, teamId: team.id, customerId: team.customerId,
                openedAt: openedAt, metadata: metadata)
            let outcome = try await storage("opening a session") { () async throws(StorageError) in
                try await services.store.write(.openSession(record))
            }
            // Unchanged: a concurrent call (pipelined on the same connection, say) stored it first.
            stored = outcome == .written ? record : try await storedSession(id)
            if try holdsOpen(id, agent: agent) { return }
        }
        guard let stored else { throw .unavailable("session \(id) vanished while opening") }
        guard stored.agentId == agent.id else { throw .forbidden("session \(id) belongs to another agent") }
        guard stored.closedAt == nil else { throw .conflict("session \(id) is closed") }
        adopt(stored)
        guard try holdsOpen(id, agent: agent) else { throw .conflict("session \(id) is closed") }
    }

    private func storedSession(_ id: String) async throws(TollgateError) -> SessionRecord? {
        try await storage("reading a session") { () async throws(StorageError) in
            try await services.store.session(tenantId: tenantId, id: id)
        }
    }

    /// A session the caller may see: any of the tenant's for operators (`agentId` nil), an agent's own
    /// otherwise (another's is NOT_FOUND, never revealed).
    private func visibleStoredSession(_ id: String, agentId: String?) async throws(TollgateError) -> SessionRecord {
        guard let stored = try await storedSession(id), agentId.map({ $0 == stored.agentId }) ?? true else {
            throw .notFound("no session \(id)")
        }
        return stored
    }

    /// Whether the open session `id` is held here, advanced to now; a closed one is CONFLICT (and its final
    /// record is written beside), another agent's FORBIDDEN.
    private func holdsOpen(_ id: String, agent: Agent) throws(TollgateError) -> Bool {
        guard let session = sessions[id] else { return false }
        guard session.record.agentId == agent.id else { throw .forbidden("session \(id) belongs to another agent") }
        guard sessions.advance(id, to: now) != .closed else {
            // Its final record is written beside, once: a flood of calls into it starts one write, not many.
            if sessions.awaitingFinalRecord.contains(id) { Task { _ = await self.finalize(id) } }
            throw .conflict("session \(id) is closed")
        }
        return true
    }

    /// Takes a stored open session in, its spend into the cap ledger.
    func adopt(_ record: SessionRecord) {
        if sessions.adopt(record) { Self.loadSpend(of: record, into: &capLedger) }
    }

    /// The agent a viewer may see the sessions of; nil for an operator, who may see all. An agent's credential
    /// must still be usable (its scopes were checked by the router).
    func agentId(of viewer: Viewer) throws(TollgateError) -> String? {
        guard case .agent(let credentialId) = viewer else { return nil }
        return try usableCredential(credentialId).agentId
    }

    /// `session.open`: opens (or returns, if this agent already has it open) the session `id`. `provenance`:
    /// fields stored with the answer under the key (a session event's, `events.ingest`).
    func openSession(
        _ id: String, metadata: String?, call: KeyedCall?, credentialId: String, provenance: [String: JSONValue]
    ) async throws(TollgateError) -> Answer<SessionView> {
        try await openSession(
            id, metadata: metadata, call: call, agentId: try usableCredential(credentialId).agentId,
            provenance: provenance)
    }

    /// `session.open` for `agentId`, whoever asks (its own credential, or an operator's events for it).
    func openSession(
        _ id: String, metadata: String?, call: KeyedCall?, agentId: String, provenance: [String: JSONValue]
    ) async throws(TollgateError) -> Answer<SessionView> {
        try await keyed(call) { () async throws(TollgateError) in
            try await ensureSession(id, for: try directory.agent(agentId), openedAt: now, metadata: metadata)
            // Opening is the session's first activity: it is ACTIVE at once, as the protocol answers.
            try sessions.activity(in: id, at: sessions.callTime(in: id, now: now))
            let answer = Answer(view(ofOpen: id)!)
            guard call != nil else { return answer }
            return try await write(
                .answerOnly, answering: Self.stored(answer.json, with: provenance), for: call,
                "storing a session's opening answer"
            ).answer(answer)
        }
    }

    public func openSession(_ id: String, metadata: String?, call: KeyedCall?, credentialId: String)
        async throws(TollgateError) -> Answer<SessionView>
    {
        try await openSession(id, metadata: metadata, call: call, credentialId: credentialId, provenance: [:])
    }

    /// An answer with `provenance`'s fields beside its own, as it is stored under its key.
    static func stored(_ answer: JSONValue, with provenance: [String: JSONValue]) -> JSONValue {
        guard !provenance.isEmpty, case .object(var fields) = answer else { return answer }
        for (key, value) in provenance { fields[key] = value }
        return .object(fields)
    }

    /// `session.close`: closes now with the caller's outcome and returns the final billing record.
    public func closeSession(_ id: String, outcome: SessionOutcome, as viewer: Viewer, call: KeyedCall?)
        async throws(TollgateError) -> Answer<SessionView>
    {
        try await closeSession(id, outcome: outcome, as: viewer, call: call, provenance: [:])
    }

    /// `session.close`, with `provenance` stored beside the final record under the key (a session event's).
    func closeSession(
        _ id: String, outcome: SessionOutcome, as viewer: Viewer, call: KeyedCall?, provenance: [String: JSONValue]
    ) async throws(TollgateError) -> Answer<SessionView> {
        try await closeSession(
            id, outcome: outcome, ofAgent: try agentId(of: viewer), call: call, provenance: provenance)
    }

    /// `session.close` of a session of `agentId` (any of the tenant's when nil); another agent's is NOT_FOUND.
    func closeSession(
        _ id: String, outcome: SessionOutcome, ofAgent agentId: String?, call: KeyedCall?,
        provenance: [String: JSONValue]
    ) async throws(TollgateError) -> Answer<SessionView> {
        try await keyed(call) { () async throws(TollgateError) in
            if sessions[id] == nil {
                let stored = try await visibleStoredSession(id, agentId: agentId)
                if stored.closedAt != nil { throw .conflict("session \(id) is already closed") }
                adopt(stored)
            }
            guard let session = sessions[id] else { throw .conflict("session \(id) is already closed") }
            if let agentId, session.record.agentId != agentId { throw .notFound("no session \(id)") }
            guard sessions.close(id, at: now, outcome: outcome) else {
                _ = await finalize(id)
                throw .conflict("session \(id) is already closed")
            }
            switch await finalize(id, answering: call, provenance: provenance) {
            case .closed(let answer): return answer
            case .replay(let replay): return Answer(replay: try replay.get())
            case .notNow: throw .unavailable("the final record could not be written; it will be retried")
            }
        }
    }

    /// Closes what has timed out by now, writes every pending final record, expires the holds whose time is up,
    /// and releases the holds orphaned at start. Called by the sweeper.
    public func sweepSessions() async {
        sessions.closeTimedOut(at: now)
        for id in sessions.awaitingFinalRecord { _ = await finalize(id) }
        await expireReservations()
        let orphans = orphanedHolds
        orphanedHolds = []
        for reservation in orphans {
            do { try await end(reservation, as: .released) } catch { orphanedHolds.append(reservation) }
        }
    }

    /// What `finalize` did.
    enum Finalized {
        /// The final record is written; the answer of `session.close`.
        case closed(Answer<SessionView>)
        /// The closing call's key was taken: its replay (or mismatch); the session waits for the next sweep.
        case replay(Result<JSONValue, TollgateError>)
        /// Not closed, being finalized by another call, or the write failed (the next sweep retries).
        case notNow
    }

    /// Writes the final record of a closed session once its calls in flight are recorded and its holds
    /// released (a closed session holds nothing), forgets the session, and raises `session_closed`.
    func finalize(_ id: String, answering call: KeyedCall? = nil, provenance: [String: JSONValue] = [:]) async
        -> Finalized
    {
        switch sessions.startFinalizing(id) {
        case .nothing: return .notNow
        case .waitForCalls: await withCheckedContinuation { sessions.waitForCalls(id, $0) }
        case .ready: break
        }
        // A hold whose release cannot be stored keeps the session in memory until the next sweep tries again.
        for reservation in holds.held(inSession: id) {
            do { try await end(reservation, as: .released) } catch {
                sessions.finalizeFailed(id)
                return .notNow
            }
        }
        guard let final = sessions.finalRecord(id), let closedAt = final.closedAt, let outcome = final.outcome else {
            return .notNow
        }
        let view = SessionView(record: final, state: .closed, currency: currency(of: final))
        let answer = Answer(view)
        let written: Written
        do {
            written = try await write(
                .closeSession(tenantId: tenantId, id: id, closedAt: closedAt, outcome: outcome, totals: final.totals),
                answering: Self.stored(answer.json, with: provenance), for: call, "writing a session's final record")
        } catch {
            sessions.finalizeFailed(id)
            return call == nil ? .notNow : .replay(.failure(error))
        }
        if case .replay(let replay) = written {
            sessions.finalizeFailed(id)
            return .replay(.success(replay))
        }
        // Written, or unchanged: closed in storage already (by a node sharing it); either way it is final.
        sessions.finalized(final)
        capLedger.forget(ScopeRef(.session, id))
        raise(.sessionClosed(view))
        return .closed(answer)
    }

    /// `session.get`: state, totals so far and, while open, `projectedCost`.
    public func sessionInfo(_ id: String, as viewer: Viewer) async throws(TollgateError) -> SessionView {
        let agentId = try agentId(of: viewer)
        if let session = sessions[id] {
            if let agentId, session.record.agentId != agentId { throw .notFound("no session \(id)") }
            sessions.advance(id, to: now)
            var view = view(ofOpen: id)!
            view.projectedCost = sessions.projectedCost(of: id, at: now)
            return view
        }
        return view(ofStored: try await visibleStoredSession(id, agentId: agentId))
    }

    /// `sessions.list` for operators: open sessions from memory (newest first, without sorting them all),
    /// closed ones from storage.
    public func listSessions(_ selection: SessionSelection, limit: Int) async throws(TollgateError) -> [SessionView] {
        if selection == .open {
            return sessions.newest(limit, at: now).map { session in
                SessionView(
                    record: session.record, state: session.lifecycle.state, currency: currency(of: session.record))
            }
        }
        let stored = try await storage("listing sessions") { () async throws(StorageError) in
            try await services.store.sessions(tenantId: tenantId, selection, limit: limit)
        }
        return stored.map { record in
            guard sessions[record.id] != nil else { return view(ofStored: record) }
            sessions.advance(record.id, to: now)
            return view(ofOpen: record.id)!
        }
    }

    /// `sessions.configure`: this tenant's idleness and timeout, stored so that they outlive a restart.
    public func configureSessions(idleAfterMs: Int64?, sessionTimeoutMs: Int64?, call: KeyedCall?)
        async throws(TollgateError) -> Answer<SessionTimeoutsView>
    {
        try await keyed(call) { () async throws(TollgateError) in
            let idle = idleAfterMs ?? Int64((sessions.timeouts.idleAfter * 1000).rounded())
            let timeout = sessionTimeoutMs ?? Int64((sessions.timeouts.sessionTimeout * 1000).rounded())
            guard idle <= timeout else { throw .validation(field: "idleAfterMs", rule: "at most sessionTimeoutMs") }
            let answer = Answer(SessionTimeoutsView(idleAfterMs: idle, sessionTimeoutMs: timeout))
            let written = try await write(
                .setSessionTimeouts(tenantId: tenantId, idleAfterMs: idle, sessionTimeoutMs: timeout),
                answering: answer, for: call, "storing session timeouts")
            if case .replay(let replay) = written { return Answer(replay: replay) }
            sessions.configure(SessionTimeouts(idleAfter: Double(idle) / 1000, sessionTimeout: Double(timeout) / 1000))
            return answer
        }
    }

    /// An open session as it stands in memory.
    private func view(ofOpen id: String) -> SessionView? {
        guard let session = sessions[id] else { return nil }
        return SessionView(
            record: session.record, state: session.lifecycle.state, currency: currency(of: session.record))
    }

    /// A session as storage has it.
    private func view(ofStored record: SessionRecord) -> SessionView {
        SessionView(record: record, state: record.closedAt == nil ? .active : .closed, currency: currency(of: record))
    }

    /// The currency of a session's amounts: its charges' once it has any, else that of the plan its customer
    /// is subscribed to now. Money is never shown without one; nil only for a customer without a plan.
    func currency(of record: SessionRecord) -> String? {
        record.totals.currency ?? directory.currency(ofCustomer: record.customerId, at: now)
    }
}
