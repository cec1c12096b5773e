import Foundation
import TollgateCore
import TollgateJSON
import TollgatePricing
import TollgateStorage

/// `usage.rerate`: a customer's recorded usage in a period, rated again under another plan version, line by line
/// against what was recorded — and, when asked, the differences recorded as adjustments.
///
/// The events are rated in the order they were recorded, from fresh running totals: the period is rated as a
/// period of its own, so for tiered plans it should be a billing period (a UTC month). An event's recorded amount
/// is its charge plus the adjustments already made to it, so re-rating again after an adjustment shows only what
/// is left. An adjustment is a charge of the difference (a credit when negative) with no usage of its own
/// (quantity and tokens 0, so it is no call), under the key `rerate:<receipt>:<plan>@<version>` — applying the same
/// re-rating twice adjusts once — with its provenance stored under that key.
extension TenantActor {
    public func rerate(_ request: RerateRequest) async throws(TollgateError) -> RerateReport {
        _ = try directory.customer(request.customerId)
        guard let planId = directory.planId(named: request.planName) else {
            throw .notFound("no plan named \(request.planName)")
        }
        let plan = try directory.plan(id: planId, version: request.planVersion)
        guard request.from < request.to else { throw .validation(field: "to", rule: "after from") }
        let rows = try await storage("reading a period's charges") { () async throws(StorageError) in
            try await services.store.charges(
                tenantId: tenantId, customerId: request.customerId, from: request.from, to: request.to)
        }
        // Adjustments already made count with the event they adjust; they are not rated themselves.
        var adjusted: [String: Money] = [:]
        var events: [ChargeRecord] = []
        for row in rows {
            if let original = Self.adjustedReceipt(row.idempotencyKey) {
                adjusted[original] = (try? (adjusted[original] ?? .zero).adding(row.cost)) ?? adjusted[original]
            } else {
                events.append(row)
            }
        }
        if let other = events.first(where: { $0.currency != plan.currency }) {
            throw .validation(
                field: "plan",
                rule: "in the currency the period was charged in (\(other.currency), not \(plan.currency))")
        }
        // Running totals start where the customer's billing period holding `from` starts.
        let period = directory.capWindows(request.customerId, at: request.from).month
        let rating = PlanRating(plan: plan, period: period.start)
        var report = RerateReport(plan: "\(plan.name)@\(plan.version)", currency: plan.currency, applied: request.apply)
        for event in events {
            let rerated: Money
            let recorded: Money
            do {
                rerated = try rating.rate(RatedEvent(event))
                recorded = try event.cost.adding(adjusted[event.receiptId] ?? .zero)
            } catch {
                throw .validation(field: "plan", rule: "a plan that prices this period's events within range")
            }
            try report.add(
                RerateLine(
                    eventId: event.idempotencyKey, receiptId: event.receiptId, tool: event.tool, at: event.at,
                    recorded: recorded, rerated: rerated))
        }
        if request.apply { try await applyAdjustments(report, events: events, plan: plan) }
        return report
    }

    /// The receipt an adjustment's key names, or nil for a charge that is no adjustment.
    static func adjustedReceipt(_ key: String) -> String? {
        guard key.hasPrefix("rerate:") else { return nil }
        return key.dropFirst("rerate:".count).split(separator: ":").first.map(String.init)
    }

    /// Records one adjustment per line that differs, in one transaction. Their sessions must be closed: an open
    /// session's record is counted as its calls arrive, and an amount changed under it would not be.
    private func applyAdjustments(_ report: RerateReport, events: [ChargeRecord], plan: Plan)
        async throws(TollgateError)
    {
        let byReceipt = Dictionary(uniqueKeysWithValues: events.map { ($0.receiptId, $0) })
        let lines = report.lines.filter { $0.difference != .zero }
        for line in lines {
            let session = byReceipt[line.receiptId]!.sessionId
            if sessions[session] != nil {
                throw .conflict("session \(session) is still open; re-rate its events once it is closed")
            }
        }
        let at = now
        var entries: [LedgerEntry] = []
        for line in lines {
            let original = byReceipt[line.receiptId]!
            let key = "rerate:\(line.receiptId):\(plan.id)@\(plan.version)"
            var charge = ChargeRecord(
                receiptId: Identifiers.make(.receipt), tenantId: tenantId, path: original.path,
                subscriptionId: original.subscriptionId, planId: plan.id, planVersion: plan.version,
                tool: original.tool, quantity: 0, cost: line.difference, currency: plan.currency,
                idempotencyKey: key, at: at)
            // In its event's task, so that a task's cost includes what re-rating changed.
            charge.invocationId = original.invocationId
            charge.parentInvocationId = original.parentInvocationId
            let provenance: JSONValue = [
                "eventId": .string(key), "status": "accepted", "type": "adjustment", "adjustment": true,
                "receiptId": .string(charge.receiptId), "cost": .string(line.difference.decimalString),
                "currency": .string(plan.currency), "source": "rerate", "ingestedAt": .string(Timestamp.format(at)),
                "occurredAt": .string(Timestamp.format(original.at)), "gates": [],
                "rerate": [
                    "of": .string(line.receiptId), "eventId": .string(line.eventId),
                    "plan": .string("\(plan.name)@\(plan.version)"), "recorded": .string(line.recorded.decimalString),
                    "rerated": .string(line.rerated.decimalString),
                ],
            ]
            entries.append(
                LedgerEntry(
                    charge: charge,
                    idempotency: IdempotencyRecord(
                        tenantId: tenantId, key: key, method: WriteMethod.usageRerate.rawValue,
                        params: JSONCodec.string(["of": .string(line.receiptId)]),
                        result: JSONCodec.string(provenance), createdAt: at)))
        }
        let outcomes = try await services.ledger.submit(unit: entries)
        // Spend follows what was recorded: a credit frees room under the caps, a charge takes it.
        for (entry, outcome) in zip(entries, outcomes) where outcome == .recorded {
            // Committed spend moves out of a hold: an amount that was never held is held first (a credit holds
            // nothing and is committed as it is).
            capLedger.hold(entry.charge.cost, on: entry.charge.path.scopes)
            capLedger.commit(
                entry.charge.cost, on: entry.charge.path.scopes,
                during: directory.capWindows(entry.charge.customerId, at: at))
            credits.recorded(entry.charge)
        }
    }
}

/// What `usage.rerate` is asked.
public struct RerateRequest: Sendable {
    public var customerId: String
    public var from: Date
    public var to: Date
    public var planName: String
    public var planVersion: Int
    public var apply: Bool

    public init(customerId: String, from: Date, to: Date, planName: String, planVersion: Int, apply: Bool) {
        self.customerId = customerId
        self.from = from
        self.to = to
        self.planName = planName
        self.planVersion = planVersion
        self.apply = apply
    }
}

/// One event of the period: what it was charged (adjustments included) and what the plan rates it now.
public struct RerateLine: Sendable, Hashable {
    public var eventId: String
    public var receiptId: String
    public var tool: String
    public var at: Date
    public var recorded: Money
    public var rerated: Money
    public var difference: Money { (try? rerated.subtracting(recorded)) ?? .zero }
}

/// `usage.rerate`'s answer: every line that differs, and the period's totals.
public struct RerateReport: JSONRepresentable, Sendable {
    public var plan: String
    public var currency: String
    public var applied: Bool
    public private(set) var lines: [RerateLine] = []
    public private(set) var events = 0
    public private(set) var recorded = Money.zero
    public private(set) var rerated = Money.zero

    init(plan: String, currency: String, applied: Bool) {
        self.plan = plan
        self.currency = currency
        self.applied = applied
    }

    mutating func add(_ line: RerateLine) throws(TollgateError) {
        events += 1
        do {
            recorded = try recorded.adding(line.recorded)
            rerated = try rerated.adding(line.rerated)
        } catch { throw .validation(field: "plan", rule: "a plan that prices this period within range") }
        lines.append(line)
    }

    public var json: JSONValue {
        let differing = lines.filter { $0.difference != .zero }
        return [
            "plan": .string(plan), "currency": .string(currency), "applied": .bool(applied),
            "events": .integer(Int64(events)), "changed": .integer(Int64(differing.count)),
            "recorded": .string(recorded.decimalString), "rerated": .string(rerated.decimalString),
            "difference": .string(((try? rerated.subtracting(recorded)) ?? .zero).decimalString),
            "lines": .array(
                differing.map { line in
                    [
                        "eventId": .string(line.eventId), "receiptId": .string(line.receiptId),
                        "tool": .string(line.tool), "at": .string(Timestamp.format(line.at)),
                        "recorded": .string(line.recorded.decimalString),
                        "rerated": .string(line.rerated.decimalString),
                        "difference": .string(line.difference.decimalString),
                    ]
                }),
        ]
    }
}
