import Foundation
import TollgateCore
import TollgateStorage

/// One open session as its tenant actor holds it: the stored record (with running totals), the lifecycle,
/// and the calls admitted but not yet recorded, which a close waits for so that the final record is complete.
struct OpenSession {
    var record: SessionRecord
    var lifecycle: SessionLifecycle
    var inFlight = 0
    /// Set while the final record is being written, so that it is written once.
    var finalizing = false
    /// Closers waiting for the calls in flight.
    var waiters: [CheckedContinuation<Void, Never>] = []
}

/// Sessions: opened explicitly (`session.open`) or by the first call naming them; IDLE after `idleAfter`;
/// CLOSED by `session.close` or after `sessionTimeout` without a call, which writes the final billing
/// record and raises `session_closed`. The lifecycle itself is the pure `SessionLifecycle`.
///
/// Open sessions live in this actor (not in actors of their own): a call's session cap is checked in the
/// same turn as every other cap on its path, which is what keeps the caps exact under racing calls.
extension TenantActor {
    /// Makes sure the session `id` of `agent` is open in this actor: held already, loaded from storage, or
    /// opened now, at `openedAt`. Refuses a closed session (CONFLICT) and another agent's (FORBIDDEN). Every
    /// await is followed by a fresh look, since a concurrent call may have opened or loaded it meanwhile.
    func ensureSession(_ id: String, for agent: Agent, openedAt: Date, metadata: String? = nil)
        async throws(TollgateError)
    {
        if try holds(id, agent: agent) { return }
        var stored = try await storedSession(id)
        if try holds(id, agent: agent) { return }
        if stored == nil {
            guard sessions.count < limits.openSessionsMax else {
                throw .conflict(
                    "the tenant has \(limits.openSessionsMax) open sessions, the most it may have; close some first")
            }
            let team = try team(agent.teamId)
            let record = SessionRecord(
                tenantId: tenantId, id: id, agentId: agent.id, teamId: team.id,
                customerId: team.customerId, openedAt: openedAt, metadata: metadata)
            let inserted: Bool
            do { inserted = try await services.store.insertSession(record) } catch {
                throw .unavailable("storage is unavailable; nothing was recorded")
            }
            // Not inserted: a concurrent call (pipelined on the same connection, say) stored it first.
            stored = inserted ? record : try await storedSession(id)
            if try holds(id, agent: agent) { return }
        }
        guard let stored else { throw .unavailable("session \(id) vanished while opening") }
        guard stored.agentId == agent.id else { throw .forbidden("session \(id) belongs to another agent") }
        guard stored.closedAt == nil else { throw .conflict("session \(id) is closed") }
        adopt(stored)
        guard try holds(id, agent: agent) else { throw .conflict("session \(id) is closed") }
    }

    private func storedSession(_ id: String) async throws(TollgateError) -> SessionRecord? {
        do { return try await services.store.session(tenantId: tenantId, id: id) } catch {
            throw .unavailable("storage is unavailable")
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

    /// Whether this actor holds the open session `id`, advanced to now; a closed one is CONFLICT (and its
    /// final record is written beside), another agent's FORBIDDEN.
    private func holds(_ id: String, agent: Agent) throws(TollgateError) -> Bool {
        guard sessions[id] != nil else { return false }
        guard sessions[id]!.record.agentId == agent.id else {
            throw .forbidden("session \(id) belongs to another agent")
        }
        guard advanceSession(id, to: services.clock.now()) != .closed else {
            // Its final record is written beside, once: a flood of calls into it starts one write, not many.
            if sessions[id]?.finalizing == false { Task { _ = await self.finalize(id) } }
            throw .conflict("session \(id) is closed")
        }
        return true
    }

    /// Takes a stored open session into memory, its spend into the cap ledger.
    func adopt(_ record: SessionRecord) {
        guard sessions[record.id] == nil else { return }
        Self.adopt(record, into: &sessions, ledger: &capLedger)
        sessionOrder.insert(record.id, openedAt: record.openedAt)
        if let deadline = sessions[record.id]?.lifecycle.timesOutAt(sessionTimeouts) {
            sessionDeadlines.push(deadline, record.id)
        }
    }

    /// Lets time pass for the open session `id` and returns its state; one that closes now (timed out) is
    /// noted for its final record. Nil if this actor does not hold it.
    @discardableResult
    func advanceSession(_ id: String, to now: Date) -> SessionState? {
        guard sessions[id] != nil else { return nil }
        sessions[id]!.lifecycle.advance(to: now, timeouts: sessionTimeouts)
        let state = sessions[id]!.lifecycle.state
        if state == .closed { closedSessions.insert(id) }
        return state
    }

    static func adopt(_ record: SessionRecord, into sessions: inout [String: OpenSession], ledger: inout CapLedger) {
        let lifecycle = SessionLifecycle(
            openedAt: record.openedAt, lastActivityAt: record.lastCallAt, closedAt: nil, outcome: nil)
        sessions[record.id] = OpenSession(record: record, lifecycle: lifecycle)
        if record.totals.cost != .zero {
            ledger.load(
                ScopeRef(.session, record.id),
                ScopeSpend(
                    lifetime: record.totals.cost, month: .zero, day: .zero, current: PeriodIndex(record.openedAt)))
        }
    }

    /// The time a call in the open session `id` is stamped with: now, but never before the session opened.
    ///
    /// Storage sums an open session's charges from its opening on (`at >= opened_at`), which is what rebuilds
    /// its totals and its cap after a restart; a charge stamped before its session's opening would be left out
    /// and the session's cap crossed. Calls racing to open a session each read the clock before one of them
    /// stores the session, so without this a call could be stamped a millisecond before the opening it waited for.
    func callTime(in id: String) -> Date {
        let now = services.clock.now()
        guard let openedAt = sessions[id]?.record.openedAt, openedAt > now else { return now }
        return openedAt
    }

    /// A call is about to be admitted in `id`: counts as activity, and as in flight until `callEnded`.
    func callStarted(in id: String, at now: Date) throws(TollgateError) {
        try recordActivity(in: id, at: now)
        sessions[id]!.inFlight += 1
    }

    /// Activity in the open session `id` at `now` (a call, a hold, the open itself): CREATED or IDLE
    /// becomes ACTIVE; a closed session is CONFLICT.
    func recordActivity(in id: String, at now: Date) throws(TollgateError) {
        // Mutated in place: a copy out of the dictionary and back would copy the session on every call.
        guard sessions[id] != nil else { throw .conflict("session \(id) is closed") }
        do { try sessions[id]!.lifecycle.recordCall(at: now, timeouts: sessionTimeouts) } catch {
            throw .conflict("session \(id) is closed")
        }
    }

    /// The call admitted in `id` was recorded (`charge`) or not (nil).
    func callEnded(in id: String, recorded charge: ChargeRecord?) {
        guard sessions[id] != nil else { return }
        sessions[id]!.inFlight -= 1
        if let charge {
            do { try sessions[id]!.record.totals.add(charge) } catch {
                services.logger.error("session total out of range", metadata: ["session": "\(id)"])
            }
            sessions[id]!.record.lastCallAt = charge.at
        }
        guard sessions[id]!.inFlight == 0, !sessions[id]!.waiters.isEmpty else { return }
        let waiters = sessions[id]!.waiters
        sessions[id]!.waiters = []
        for waiter in waiters { waiter.resume() }
    }

    /// `session.close`: closes now with the caller's outcome and returns the final billing record.
    public func closeSession(_ id: String, outcome: SessionOutcome, agentId: String?) async throws(TollgateError)
        -> JSONValue
    {
        let now = services.clock.now()
        guard var open = sessions[id] else {
            let stored = try await visibleStoredSession(id, agentId: agentId)
            if stored.closedAt != nil { throw .conflict("session \(id) is already closed") }
            adopt(stored)
            return try await closeSession(id, outcome: outcome, agentId: agentId)
        }
        if let agentId, open.record.agentId != agentId { throw .notFound("no session \(id)") }
        do { try open.lifecycle.close(at: now, outcome: outcome, timeouts: sessionTimeouts) } catch {
            sessions[id] = open
            closedSessions.insert(id)
            _ = await finalize(id)
            throw .conflict("session \(id) is already closed")
        }
        sessions[id] = open
        closedSessions.insert(id)
        guard let record = await finalize(id) else {
            throw .unavailable("the final record could not be written; it will be retried")
        }
        return describe(closed: record)
    }

    /// Closes what has timed out by `now` and writes every pending final record. Called by the sweeper.
    public func sweepSessions() async {
        let now = services.clock.now()
        // Only the sessions whose timeout may have come: a session's entry is pushed again with its real
        // deadline when calls have moved it since.
        while let (due, id) = sessionDeadlines.peek(), due <= now {
            sessionDeadlines.pop()
            guard advanceSession(id, to: now) != .closed, let next = sessions[id]?.lifecycle.timesOutAt(sessionTimeouts)
            else { continue }
            sessionDeadlines.push(next, id)
        }
        await finalizeClosedSessions()
        await expireReservations()
        let orphans = orphanedHolds
        orphanedHolds = []
        for reservation in orphans {
            do { try await finish(reservation, as: .released) } catch { orphanedHolds.append(reservation) }
        }
    }

    func finalizeClosedSessions() async {
        for id in closedSessions where sessions[id]?.finalizing == false {
            _ = await finalize(id)
        }
    }

    /// Writes the final record of a closed session once its calls in flight are recorded, forgets the
    /// session, and raises `session_closed`. Nil if the write failed (the next sweep retries).
    private func finalize(_ id: String) async -> SessionRecord? {
        guard let open = sessions[id], open.lifecycle.state == .closed, !open.finalizing else { return nil }
        sessions[id]?.finalizing = true
        if open.inFlight > 0 {
            await withCheckedContinuation { continuation in sessions[id]?.waiters.append(continuation) }
        }
        guard var final = sessions[id] else { return nil }
        let closedAt = final.lifecycle.closedAt!
        let outcome = final.lifecycle.outcome!
        // A closed session holds nothing: its holds are released, once each, before it is forgotten. A hold
        // whose release cannot be stored keeps the session open in memory until the next sweep tries again.
        for reservation in holds.held(inSession: id) {
            do { try await finish(reservation, as: .released) } catch {
                sessions[id]?.finalizing = false
                return nil
            }
        }
        do {
            try await services.store.closeSession(
                tenantId: tenantId, id: id, closedAt: closedAt, outcome: outcome,
                totals: final.record.totals)
        } catch {
            services.logger.error(
                "writing a session's final record failed", metadata: ["session": "\(id)", "error": "\(error)"])
            sessions[id]?.finalizing = false
            return nil
        }
        final.record.closedAt = closedAt
        final.record.outcome = outcome
        sessions[id] = nil
        closedSessions.remove(id)
        sessionOrder.closedOne { sessions[$0] != nil }
        capLedger.forget(ScopeRef(.session, id))
        sessionLengths.record(agentId: final.record.agentId, seconds: closedAt.timeIntervalSince(final.record.openedAt))
        var fields = describe(closed: final.record).objectValue ?? [:]
        fields["sessionId"] = .string(id)
        raise("session_closed", fields)
        return final.record
    }

    /// `session.get`: state, totals so far and, while open, `projectedCost`.
    public func sessionInfo(_ id: String, agentId: String?) async throws(TollgateError) -> JSONValue {
        let now = services.clock.now()
        if let open = sessions[id] {
            if let agentId, open.record.agentId != agentId { throw .notFound("no session \(id)") }
            var answer = describe(open.record, at: now).objectValue ?? [:]
            if sessions[id]!.lifecycle.state != .closed, let projected = projectedCost(of: sessions[id]!, at: now) {
                answer["projectedCost"] = .string(projected.decimalString)
            }
            return .object(answer)
        }
        return describe(try await visibleStoredSession(id, agentId: agentId), at: now)
    }

    /// Cost so far × the agent's typical session length ÷ the time this one has run: what it will cost at its
    /// current rate if it runs as long as the agent's sessions usually do. Nil without closed sessions to
    /// learn from, or before a call.
    private func projectedCost(of open: OpenSession, at now: Date) -> Money? {
        guard let typical = sessionLengths.typicalSeconds(agentId: open.record.agentId) else { return nil }
        let elapsedMs = Int64((now.timeIntervalSince(open.record.openedAt) * 1000).rounded(.down))
        let typicalMs = Int64((typical * 1000).rounded())
        guard elapsedMs > 0, open.record.totals.calls > 0 else { return nil }
        guard typicalMs > elapsedMs else { return open.record.totals.cost }
        let projected =
            (Int128(open.record.totals.cost.nanos) * Int128(typicalMs) + Int128(elapsedMs / 2)) / Int128(elapsedMs)
        return Int64(exactly: projected).map(Money.init(nanos:))
    }

    /// A session as it stands at `now`: from this actor when it holds it open (advanced to `now`), else as stored.
    private func describe(_ record: SessionRecord, at now: Date) -> JSONValue {
        guard sessions[record.id] != nil else {
            return Self.describe(
                record, state: record.closedAt == nil ? .active : .closed,
                currency: currency(of: record))
        }
        advanceSession(record.id, to: now)
        let open = sessions[record.id]!
        return Self.describe(open.record, state: open.lifecycle.state, currency: currency(of: open.record))
    }

    private func describe(closed record: SessionRecord) -> JSONValue {
        Self.describe(record, state: .closed, currency: currency(of: record))
    }

    /// The currency of a session's amounts: its charges' once it has any, else that of the plan its customer
    /// is subscribed to now. Money is never shown without one; nil only for a customer without a plan.
    func currency(of record: SessionRecord) -> String? {
        if let currency = record.totals.currency { return currency }
        let now = services.clock.now()
        guard let subscription = subscription(for: record.customerId, at: now) else { return nil }
        let inForce = planInForce(subscription, at: now)
        return plans[inForce.planId]?[inForce.version]?.currency
    }

    /// The session fields of `session.get`, `session.close` and `session_closed`.
    static func describe(_ record: SessionRecord, state: SessionState, currency: String?) -> JSONValue {
        var fields: [String: JSONValue] = [
            "sessionId": .string(record.id), "agentId": .string(record.agentId), "state": .string(state.rawValue),
            "openedAt": .string(Timestamp.format(record.openedAt)),
            "calls": .integer(record.totals.calls), "inputTokens": .integer(record.totals.inputTokens),
            "outputTokens": .integer(record.totals.outputTokens),
            "reasoningTokens": .integer(record.totals.reasoningTokens),
            "durationMs": .integer(record.totals.durationMs), "cost": .string(record.totals.cost.decimalString),
            "providerCost": .string(record.totals.providerCost.decimalString), "errors": .integer(record.totals.errors),
        ]
        if let currency { fields["currency"] = .string(currency) }
        if let closedAt = record.closedAt { fields["closedAt"] = .string(Timestamp.format(closedAt)) }
        if let outcome = record.outcome { fields["outcome"] = .string(outcome.rawValue) }
        if let metadata = record.metadata, let value = try? JSONCodec.parse(metadata) { fields["metadata"] = value }
        return .object(fields)
    }

    /// `sessions.list` for operators: open sessions from memory (newest first, without sorting them all),
    /// closed ones from storage.
    public func listSessions(_ selection: SessionSelection, limit: Int) async throws(TollgateError) -> [JSONValue] {
        if selection == .open {
            let now = services.clock.now()
            let ids = sessionOrder.newest(limit) { sessions[$0] != nil }
            return ids.map { id in describe(sessions[id]!.record, at: now) }
        }
        let stored: [SessionRecord]
        do { stored = try await services.store.sessions(tenantId: tenantId, selection, limit: limit) } catch {
            throw .unavailable("storage is unavailable")
        }
        let now = services.clock.now()
        return stored.map { describe($0, at: now) }
    }
}

/// How long each agent's sessions usually last, learnt from the ones that closed: `projectedCost`'s horizon.
struct SessionLengths {
    private var totals: [String: (count: Int, seconds: Double)] = [:]

    mutating func record(agentId: String, seconds: Double) {
        var entry = totals[agentId] ?? (0, 0)
        entry.count += 1
        entry.seconds += max(0, seconds)
        totals[agentId] = entry
    }

    func typicalSeconds(agentId: String) -> Double? {
        guard let entry = totals[agentId], entry.count > 0 else { return nil }
        return entry.seconds / Double(entry.count)
    }
}

extension TenantActor {
    static func sessionTimeoutsKey(_ tenantId: String) -> String { "sessionTimeouts:\(tenantId)" }

    static func sessionTimeouts(from text: String) -> SessionTimeouts? {
        guard let value = try? JSONCodec.parse(text), let idle = value["idleAfterMs"]?.int64Value,
            let timeout = value["sessionTimeoutMs"]?.int64Value
        else { return nil }
        return SessionTimeouts(idleAfter: Double(idle) / 1000, sessionTimeout: Double(timeout) / 1000)
    }

    /// `sessions.configure`: this tenant's idleness and timeout, stored so that they outlive a restart.
    public func configureSessions(idleAfterMs: Int64?, sessionTimeoutMs: Int64?) async throws(TollgateError)
        -> SessionTimeouts
    {
        var timeouts = sessionTimeouts
        if let idleAfterMs { timeouts.idleAfter = Double(idleAfterMs) / 1000 }
        if let sessionTimeoutMs { timeouts.sessionTimeout = Double(sessionTimeoutMs) / 1000 }
        guard timeouts.idleAfter <= timeouts.sessionTimeout else {
            throw .validation(field: "idleAfterMs", rule: "at most sessionTimeoutMs")
        }
        let text = JSONCodec.string([
            "idleAfterMs": .integer(Int64((timeouts.idleAfter * 1000).rounded())),
            "sessionTimeoutMs": .integer(Int64((timeouts.sessionTimeout * 1000).rounded())),
        ])
        try await write { () async throws(StorageError) in
            try await services.store.putSetting(Self.sessionTimeoutsKey(tenantId), text)
        }
        sessionTimeouts = timeouts
        sessionDeadlines.removeAll()
        for (id, open) in sessions {
            if let deadline = open.lifecycle.timesOutAt(timeouts) { sessionDeadlines.push(deadline, id) }
        }
        return timeouts
    }
}

extension TenantActor {
    /// `session.open`: opens (or returns, if this agent already has it open) the session `id`.
    public func openSession(_ id: String, agentId: String, metadata: String?) async throws(TollgateError) -> JSONValue {
        try await ensureSession(id, for: try agent(agentId), openedAt: services.clock.now(), metadata: metadata)
        // Opening is the session's first activity: it is ACTIVE at once, as the protocol answers.
        try recordActivity(in: id, at: callTime(in: id))
        let open = sessions[id]!
        return Self.describe(open.record, state: open.lifecycle.state, currency: currency(of: open.record))
    }

    public func listAlerts(kinds: [String]?, limit: Int) async throws(TollgateError) -> [JSONValue] {
        do {
            return try await services.store.alerts(tenantId: tenantId, kinds: kinds, limit: limit).map {
                (try? JSONCodec.parse($0.body)) ?? ["alertId": .string($0.id), "kind": .string($0.kind)]
            }
        } catch { throw .unavailable("storage is unavailable") }
    }

    public func listCaps() -> [JSONValue] {
        let period = PeriodIndex(services.clock.now())
        return capLedger.caps.values.flatMap(\.values).filter { $0.target.scope != .credential }
            .sorted {
                ($0.target.scope.rawValue, $0.target.id, $0.period.rawValue) < (
                    $1.target.scope.rawValue, $1.target.id, $1.period.rawValue
                )
            }
            .map { cap in
                var fields: [String: JSONValue] = [
                    "capId": .string(cap.id), "scope": .string(cap.target.scope.rawValue),
                    "scopeId": .string(cap.target.id),
                    "period": .string(cap.period.rawValue), "limit": .string(cap.limit.decimalString),
                ]
                if let percent = cap.warnAtPercent { fields["warnAtPercent"] = .integer(Int64(percent)) }
                if cap.period != .session, let used = capLedger.used(cap, on: [cap.target], during: period) {
                    fields["spent"] = .string(used.decimalString)
                }
                return .object(fields)
            }
    }
}
