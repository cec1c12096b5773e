import Foundation
import TollgateCore
import TollgateIngest
import TollgateJSON
import TollgatePricing
import TollgateStorage

/// `events.ingest`: a batch of usage events through the four gates (`EventGates`), each event that passes rated,
/// capped and charged exactly as a `meter.verify` call is, all of the batch's records written as one unit of the
/// ledger (one transaction), and the batch answered once they are durable.
///
/// An event is charged when it is ingested, in the open period, as a call made now would be: that is what its caps
/// check (a batch never pushes one over), and how a late event whose month has ended reaches the next invoice as an
/// adjustment rather than a period that is over. When it occurred decides whether it is late, and stays in its
/// provenance.
///
/// An event's id is its idempotency key, in the tenant's one namespace of keys: its record in the ledger is its
/// charge, its key and its provenance (the event as sent, where from, when, the gates it passed, and the billing
/// context it was rated in), written in one row — so a failed write leaves the id free and its retry is counted
/// once, never zero times.
extension TenantActor {
    /// Who sends a batch of events.
    public enum EventSender: Sendable, Equatable {
        /// An agent, by its own credential (`meter:write`).
        case agent(credentialId: String)
        /// An operator (`events:write`), for one of the tenant's agents: the events are that agent's usage, charged
        /// on its path as its own calls are, and recorded as by `credentialId` — the operator credential's id, or
        /// `root` — which is what `usage.summary` shows them under when grouped by credential.
        case operatorFor(agentId: String, credentialId: String)
    }

    /// The credential the events are charged with: the agent's own, or — for an operator's events — one standing
    /// for the operator, on the agent's path, with no limit of its own (the agent's caps all apply).
    private func sendingCredential(_ sender: EventSender) throws(TollgateError) -> Credential {
        switch sender {
        case .agent(let credentialId): return try meterCredential(credentialId)
        case .operatorFor(let agentId, let credentialId):
            _ = try directory.agent(agentId)
            return Credential(
                id: credentialId, tenantId: tenantId, agentId: agentId, scopes: [AgentScope.meterWrite],
                expiresAt: .distantFuture, revokedAt: nil, spendLimit: nil)
        }
    }

    public func ingest(_ batch: EventBatch, credentialId: String) async throws(TollgateError) -> [EventOutcome] {
        try await ingest(batch, from: .agent(credentialId: credentialId))
    }

    public func ingest(_ batch: EventBatch, from sender: EventSender) async throws(TollgateError) -> [EventOutcome] {
        let ids = Set(batch.events.compactMap { $0["eventId"]?.stringValue })
        // Another batch holding some of these ids is waited for: then they are duplicates, or free again.
        while !eventsInFlight.isDisjoint(with: ids) {
            await withCheckedContinuation { eventWaiters.append($0) }
        }
        // From here to the claims below, one turn: no other call can take one of these ids meanwhile.
        let credential = try sendingCredential(sender)
        let caller = try directory.agent(credential.agentId)
        let ingestedAt = now
        var gates = configuration.eventGates
        let pricing = try directory.pricing(for: credential, product: batch.product, at: ingestedAt)
        gates.schema.declaredMetrics = Set(pricing.plan.metrics)
        var known: [String: String] = [:]
        for id in ids {
            if case .answered(_, let fingerprint, _)? = keys[id] { known[id] = fingerprint }
        }
        let checked = gates.check(
            batch.events, principal: caller.id, now: ingestedAt, stored: known,
            closedThrough: directory.calendar(for: pricing.subscription).period(containing: ingestedAt).start)
        var outcomes = [EventOutcome?](repeating: nil, count: batch.events.count)
        var pending: [PendingEvent] = []
        var sessionEvents: [SessionEvent] = []
        for (index, result) in checked.enumerated() {
            switch result {
            case .duplicate(let id):
                // Recorded before (its receipt is in memory), or earlier in this batch (named once it is recorded).
                var receiptId: String?
                if case .answered(_, _, let answer)? = keys[id] { receiptId = answer["receiptId"]?.stringValue }
                outcomes[index] = .duplicate(eventId: id, receiptId: receiptId)
            case .rejected(let id, let rejection): outcomes[index] = .rejected(eventId: id, rejection)
            case .record(let event, let lateness, let fingerprint):
                let call = KeyedCall(key: event.eventId, method: .eventsIngest, fingerprint: fingerprint)
                if case .session(let action) = event.kind {
                    // Applied through session.open and session.close, which claim the id themselves.
                    sessionEvents.append((index, action, event.sessionId!, event.occurredAt, lateness, call))
                    continue
                }
                do {
                    // Not in memory (the gates judged those): claimed now, or held by a call of another method.
                    if case .replay(let answer) = try keys.claim(call) {
                        outcomes[index] = .duplicate(
                            eventId: event.eventId, receiptId: answer["receiptId"]?.stringValue)
                        continue
                    }
                } catch {
                    outcomes[index] = .refused(eventId: event.eventId, error)
                    continue
                }
                eventsInFlight.insert(event.eventId)
                pending.append(
                    PendingEvent(
                        index: index, event: event, raw: batch.events[index], lateness: lateness, call: call,
                        sessionId: event.sessionId ?? batch.defaultSessionId))
            }
        }
        defer {
            // Whatever was not recorded leaves its id free; batches waiting for these ids look again.
            for event in pending where outcomes[event.index]?.isRecorded != true { keys.release(event.call.key) }
            for event in pending { eventsInFlight.remove(event.eventId) }
            let waiters = eventWaiters
            eventWaiters = []
            for waiter in waiters { waiter.resume() }
        }
        // A batch's session starts apply first, then its charges, then its closes: an event is never refused
        // because its session's start came later in the batch.
        for event in sessionEvents where event.action == .start {
            outcomes[event.index] = await apply(event, agentId: caller.id, batch: batch, ingestedAt: ingestedAt)
        }
        let recorded = try await record(
            pending, in: batch, credential: credential, caller: caller, ingestedAt: ingestedAt)
        for (index, outcome) in recorded { outcomes[index] = outcome }
        for event in sessionEvents where event.action == .close {
            outcomes[event.index] = await apply(event, agentId: caller.id, batch: batch, ingestedAt: ingestedAt)
        }
        // An event refused by a cap may be the retry of one recorded before this process started: that one is a
        // duplicate, not a refusal. Only refusals pay for this look-up.
        for event in pending {
            guard case .refused(_, .budgetExceeded)? = outcomes[event.index],
                let stored = try await storedAnswer(event.eventId)
            else { continue }
            outcomes[event.index] = duplicate(of: stored, asking: event.call)
        }
        return Self.resolvingDuplicates(outcomes.map { $0! }, of: batch.events)
    }

    /// Opens the sessions the events name, then charges the events — in rounds, each one actor turn from the first
    /// price to the ledger submit, until none is left to price again (see `PricingStream`).
    private func record(
        _ pending: [PendingEvent], in batch: EventBatch, credential: Credential, caller: Agent, ingestedAt: Date
    ) async throws(TollgateError) -> [(Int, EventOutcome)] {
        var outcomes: [(Int, EventOutcome)] = []
        var todo: [PendingEvent] = []
        // Sessions first: opening one may wait on storage, which must not happen between two prices.
        var failed: [String: TollgateError] = [:]
        for sessionId in Set(pending.map(\.sessionId)) {
            do { try await ensureSession(sessionId, for: caller, openedAt: ingestedAt) } catch {
                failed[sessionId] = error
            }
        }
        for event in pending {
            if let error = failed[event.sessionId] {
                outcomes.append((event.index, .refused(eventId: event.eventId, error)))
            } else {
                todo.append(event)
            }
        }
        for _ in 1...Self.pricingAttemptsMax where !todo.isEmpty {
            // Everything a price needs that may wait on storage, loaded before the turn that prices (once for each
            // moment the events are charged at: one, unless a session opened after the batch arrived).
            let loadAt = now
            for at in Set(todo.map { sessions.callTime(in: $0.sessionId, now: loadAt) }) {
                guard let pricing = try? directory.pricing(for: credential, product: batch.product, at: at) else {
                    continue
                }
                try await loadCustomerMargin(pricing.team.customerId, at: at)
                _ = try await rating(for: pricing.subscription, plan: pricing.plan, at: at)
            }
            // The events are charged at the moment of the turn that prices and queues them — not when the batch
            // arrived, before the loads above waited — so that closing a period never misses one stamped inside it.
            let round = admit(
                todo, credential: credential, product: batch.product, source: batch.source, ingestedAt: ingestedAt,
                chargedAt: now)
            outcomes += round.refused
            guard let admitted = round.admitted else { continue }  // a pricing state went missing: load it again
            todo = []
            let results: [CommitOutcome]
            do { results = try await services.ledger.submit(unit: admitted.map(\.entry)) } catch {
                for charge in admitted { finish(charge.admission, recorded: nil) }
                throw error
            }
            for (charge, result) in zip(admitted, results) {
                switch result {
                case .recorded:
                    finish(charge.admission, recorded: charge.entry.charge)
                    raise(
                        CapAlerts.recorded(
                            charge.admission.cost, path: charge.admission.path, scopes: charge.admission.scopes,
                            during: charge.admission.windows, ledger: capLedger, marks: &marks))
                    raise(
                        guards.recorded(
                            charge.entry.charge, session: sessions[charge.event.sessionId]?.record.totals,
                            month: charge.admission.windows.month, marks: &marks))
                    // Memory keeps what a duplicate is answered with; the whole record is in storage.
                    keys.answered(charge.event.call, ["receiptId": .string(charge.receipt.receiptId)])
                    outcomes.append((charge.event.index, .accepted(charge.receipt)))
                case .duplicate(let stored):
                    // Recorded under this id by another process sharing the store.
                    finish(charge.admission, recorded: nil)
                    outcomes.append((charge.event.index, duplicate(of: stored, asking: charge.event.call)))
                case .stale:
                    finish(charge.admission, recorded: nil)
                    todo.append(charge.event)
                }
            }
        }
        for event in todo {
            outcomes.append(
                (event.index, .refused(eventId: event.eventId, .unavailable("the event could not be priced"))))
        }
        return outcomes
    }

    /// One round's turn: prices and admits every event in order, with no suspension point, so that the events are
    /// priced one after the other against everything admitted before them, and queues none of them yet. Nil
    /// `admitted` when a pricing state is not in memory (another call's turn dropped it): the round starts over.
    private func admit(
        _ todo: [PendingEvent], credential: Credential, product: String?, source: EventSource, ingestedAt: Date,
        chargedAt: Date
    ) -> (admitted: [AdmittedEvent]?, refused: [(Int, EventOutcome)]) {
        var admitted: [AdmittedEvent] = []
        admitted.reserveCapacity(todo.count)
        var refused: [(Int, EventOutcome)] = []
        let shared = EventProvenance.Batch(ingestedAt: ingestedAt, source: source)
        // The events of a batch are charged at one moment (unless a session opened later), so their pricing and
        // rating state are looked up once for that moment.
        var looked: (at: Date, pricing: TenantDirectory.Pricing, rating: SubscriptionRating)?
        for event in todo {
            let at = sessions.callTime(in: event.sessionId, now: chargedAt)
            if looked?.at != at {
                let pricing: TenantDirectory.Pricing
                do { pricing = try directory.pricing(for: credential, product: product, at: at) } catch {
                    refused.append((event.index, .refused(eventId: event.eventId, error)))
                    continue
                }
                guard let rating = cachedRating(for: pricing.subscription, plan: pricing.plan, at: at),
                    !guards.needsMargin(
                        pricing.team.customerId, in: directory.capWindows(pricing.team.customerId, at: at).month)
                else {
                    for charge in admitted { finish(charge.admission, recorded: nil) }
                    return (nil, [])
                }
                looked = (at, pricing, rating)
            }
            let (pricing, rating) = (looked!.pricing, looked!.rating)
            var rated = event.event.rated
            do { try pricing.check(tool: rated.tool) } catch {
                refused.append((event.index, .refused(eventId: event.eventId, error)))
                continue
            }
            rated.agentId = pricing.agent.id
            rated.sessionId = event.sessionId
            let path = pricing.path(sessionId: event.sessionId, credentialId: credential.id)
            let admission: Admission
            do { admission = try self.admit(rated, path: path, rating: rating, at: at, settling: nil) } catch {
                refused.append((event.index, .refused(eventId: event.eventId, error)))
                continue
            }
            let receipt = EventReceipt(
                eventId: event.eventId, receiptId: Identifiers.make(.receipt), cost: admission.cost,
                currency: pricing.plan.currency, sessionId: event.sessionId, chargedAt: at,
                lateness: event.lateness)
            var record = ChargeRecord(
                receiptId: receipt.receiptId, tenantId: tenantId, path: path, subscriptionId: pricing.subscription.id,
                planId: pricing.plan.id, planVersion: pricing.plan.version, tool: rated.tool, quantity: rated.quantity,
                inputTokens: rated.inputTokens, outputTokens: rated.outputTokens,
                reasoningTokens: rated.reasoningTokens, cost: admission.cost, providerCost: rated.providerCost,
                model: rated.model, currency: pricing.plan.currency, idempotencyKey: event.eventId, at: at)
            record.parentInvocationId = event.event.graph.parentInvocationId
            record.retryCount = event.event.graph.retryCount
            record.parallel = event.event.graph.parallel
            // A late event's line on the invoice names the period it occurred in.
            if event.event.occurredAt < at { record.occurredAt = event.event.occurredAt }
            let provenance = EventProvenance(
                receipt: receipt, type: event.event.kind.name, occurredAt: event.event.occurredAt, batch: shared)
            let entry = LedgerEntry(
                charge: record,
                idempotency: IdempotencyRecord(
                    tenantId: tenantId, key: event.eventId, method: WriteMethod.eventsIngest.rawValue,
                    params: event.call.fingerprint, result: provenance.text, createdAt: ingestedAt),
                pricing: admission.ticket)
            admitted.append(AdmittedEvent(event: event, admission: admission, entry: entry, receipt: receipt))
        }
        return (admitted, refused)
    }

    /// A session event: the session opened (or found open) or closed, under the event's id as its key, with the
    /// event's provenance stored beside the session's answer.
    private func apply(_ event: SessionEvent, agentId: String, batch: EventBatch, ingestedAt: Date) async
        -> EventOutcome
    {
        let id = event.call.key
        let provenance: [String: JSONValue] = [
            "eventId": .string(id), "status": .string(event.lateness == .onTime ? "accepted" : "late"),
            "type": "session", "action": .string(event.action.rawValue), "source": .string(batch.source.rawValue),
            "occurredAt": .string(Timestamp.format(event.occurredAt)),
            "ingestedAt": .string(Timestamp.format(ingestedAt)),
            "gates": .array(EventGates.names.map(JSONValue.string)),
        ]
        do {
            let answer =
                switch event.action {
                case .start:
                    try await openSession(
                        event.sessionId, metadata: nil, call: event.call, agentId: agentId, provenance: provenance)
                case .close:
                    try await closeSession(
                        event.sessionId, outcome: .completed, ofAgent: agentId, call: event.call,
                        provenance: provenance)
                }
            if answer.replayed { return .duplicate(eventId: id, receiptId: nil) }
            return .applied(eventId: id, lateness: event.lateness)
        } catch .idempotencyMismatch {
            return .rejected(
                eventId: id,
                EventRejection(
                    "IDEMPOTENCY_MISMATCH", field: "eventId",
                    "this eventId was already used for an event with another body, or by another call"))
        } catch {
            return .refused(eventId: id, error)
        }
    }

    /// The answer to an event whose id was found taken: a duplicate if it is this very event (from this agent),
    /// else a mismatch.
    private func duplicate(of stored: IdempotencyRecord, asking call: KeyedCall) -> EventOutcome {
        do {
            let first = try keys.replay(stored: stored, asking: call)
            return .duplicate(eventId: call.key, receiptId: first["receiptId"]?.stringValue)
        } catch {
            return .rejected(
                eventId: call.key,
                EventRejection(
                    "IDEMPOTENCY_MISMATCH", field: "eventId",
                    "this eventId was already used for an event with another body, or by another call"))
        }
    }

    /// Duplicates within the batch name the receipt of the event they repeat, once it is known.
    private static func resolvingDuplicates(_ outcomes: [EventOutcome], of events: [JSONValue]) -> [EventOutcome] {
        var receipts: [String: String] = [:]
        for outcome in outcomes {
            if case .accepted(let receipt) = outcome { receipts[receipt.eventId] = receipt.receiptId }
        }
        return outcomes.map { outcome in
            guard case .duplicate(let id, nil) = outcome, let receipt = receipts[id] else { return outcome }
            return .duplicate(eventId: id, receiptId: receipt)
        }
    }
}

/// An event past the gates, its id claimed, on its way to the ledger.
struct PendingEvent {
    var index: Int
    var event: UsageEvent
    var raw: JSONValue
    var lateness: LatenessGate.Verdict
    var call: KeyedCall
    /// The session it is charged in: its own, or the connection's.
    var sessionId: String

    var eventId: String { event.eventId }

}

/// A session's start or close, from a batch.
typealias SessionEvent = (
    index: Int, action: UsageEvent.SessionAction, sessionId: String, occurredAt: Date, lateness: LatenessGate.Verdict,
    call: KeyedCall
)

/// An event admitted in a round: its price held on the caps, its record ready.
struct AdmittedEvent {
    var event: PendingEvent
    var admission: Admission
    var entry: LedgerEntry
    var receipt: EventReceipt
}

extension UsageEvent {
    /// The event as rating sees it: a tool invocation is a call; tokens are priced by the tokens, never as a call
    /// (quantity 0); a custom metric is `quantity` units of a tool named for the metric.
    var rated: RatedEvent {
        switch kind {
        case .toolInvocation, .session:
            RatedEvent(tool: tool ?? "", quantity: quantity)
        case .tokenConsumption:
            RatedEvent(
                tool: tool ?? "llm", quantity: 0, inputTokens: inputTokens, outputTokens: outputTokens,
                reasoningTokens: reasoningTokens, providerCost: providerCost, model: model)
        case .metric(let name):
            RatedEvent(tool: name, quantity: quantity)
        }
    }
}

/// `events.get`: one event, as recorded, with its provenance.
extension TenantActor {
    /// The methods whose keys name events: a batch's events, the calls `meter.verify` charged, and the calls held
    /// by `meter.authorize` (the MCP proxy's) and charged by their commit.
    static let eventMethods: Set<String> = [
        WriteMethod.eventsIngest.rawValue, WriteMethod.meterVerify.rawValue, WriteMethod.meterCommit.rawValue,
        WriteMethod.meterAuthorize.rawValue, WriteMethod.usageRerate.rawValue,
    ]

    /// The event recorded under `id`. An agent sees only the events it sent; an operator, every event of the
    /// tenant. An id taken by anything else (a session opened under a key, a cap set) is not an event.
    /// `known` is the event's charge if the caller has read it already (a trace page reads a line's charges at
    /// once): it is not read again.
    public func event(_ id: String, as viewer: Viewer, known: ChargeRecord? = nil) async throws(TollgateError)
        -> EventView
    {
        let agentId = try agentId(of: viewer)
        guard let stored = try await storedAnswer(id), Self.eventMethods.contains(stored.method),
            let fingerprint = try? JSONCodec.parse(Array(stored.params.utf8)),
            agentId == nil || fingerprint["agentId"]?.stringValue == agentId
        else { throw .notFound("no event \(id)") }
        var result = (try? JSONCodec.parse(Array(stored.result.utf8))) ?? .null
        if stored.method == WriteMethod.meterAuthorize.rawValue,
            let reservationId = result["reservationId"]?.stringValue
        {
            // A held call: charged by its commit, if it was committed.
            let reservation = try await storage("reading an event's hold") { () async throws(StorageError) in
                try await services.store.reservation(tenantId: tenantId, id: reservationId)
            }
            result = [
                "status": .string(
                    reservation?.state == .committed ? "accepted" : reservation?.state.rawValue ?? "held"),
                "receiptId": reservation?.receiptId.map(JSONValue.string) ?? .null,
            ]
        }
        var charge: ChargeRecord?
        if let known, known.receiptId == result["receiptId"]?.stringValue {
            charge = known
        } else if let receiptId = result["receiptId"]?.stringValue {
            charge = try await storage("reading an event's charge") { () async throws(StorageError) in
                try await services.store.charge(tenantId: tenantId, receiptId: receiptId)
            }
        }
        return EventView(
            stored: stored, sentBy: fingerprint["agentId"]?.stringValue, payload: fingerprint["params"],
            result: result, charge: charge)
    }
}
