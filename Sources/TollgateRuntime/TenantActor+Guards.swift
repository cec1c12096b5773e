import Foundation
import TollgateCore
import TollgateStorage

/// Thresholds of the velocity alert and the margin guard, server-wide.
public struct GuardLimits: Sendable, Hashable {
    /// `velocity` fires when an agent's calls in the current minute exceed this many times its average per
    /// minute over the trailing window…
    public var velocityFactor: Int
    /// …measured over this many whole minutes before the current one…
    public var velocityWindowMinutes: Int
    /// …and only once the current minute has at least this many calls (a quiet agent's first burst is not news).
    public var velocityMinCallsPerMinute: Int
    /// Margin guard levels: provider cost above this percentage of revenue, for a session or a customer's
    /// month. L1 raises an alert; L2 also throttles; L3 also blocks. 0 turns a level off.
    public var marginL1Percent: Int
    public var marginL2Percent: Int
    public var marginL3Percent: Int
    /// At L2, one call per this many milliseconds is let through; the others get RATE_LIMITED.
    public var marginThrottleMs: Int64

    public init(
        velocityFactor: Int = 3, velocityWindowMinutes: Int = 60, velocityMinCallsPerMinute: Int = 10,
        marginL1Percent: Int = 100, marginL2Percent: Int = 125, marginL3Percent: Int = 150,
        marginThrottleMs: Int64 = 1000
    ) {
        self.velocityFactor = velocityFactor
        self.velocityWindowMinutes = velocityWindowMinutes
        self.velocityMinCallsPerMinute = velocityMinCallsPerMinute
        self.marginL1Percent = marginL1Percent
        self.marginL2Percent = marginL2Percent
        self.marginL3Percent = marginL3Percent
        self.marginThrottleMs = marginThrottleMs
    }

    /// The margin level (0–3) of a scope that earned `revenue` and cost its providers `providerCost`.
    func marginLevel(revenue: Money, providerCost: Money) -> Int {
        guard providerCost > .zero else { return 0 }
        func above(_ percent: Int) -> Bool {
            percent > 0 && Int128(providerCost.nanos) * 100 > Int128(revenue.nanos) * Int128(percent)
        }
        return above(marginL3Percent) ? 3 : above(marginL2Percent) ? 2 : above(marginL1Percent) ? 1 : 0
    }
}

/// Calls per minute of one agent over the trailing window. On every call's path, so the window is pruned
/// only when the minute changes, and its total is kept as it goes.
struct CallRate {
    private var minute: Int64 = .min
    private var current = 0
    /// Earlier minutes' counts, and their sum.
    private var history: [(minute: Int64, calls: Int)] = []
    private var historyCalls = 0
    /// The minute `velocity` last fired in, so it fires once per crossing.
    var alertedMinute: Int64?

    mutating func add(_ calls: Int, minute now: Int64, window: Int) {
        if now != minute {
            if current > 0 {
                history.append((minute, current))
                historyCalls += current
            }
            minute = now
            current = 0
            let oldest = now - Int64(window)
            while let first = history.first, first.minute < oldest {
                historyCalls -= first.calls
                history.removeFirst()
            }
        }
        current += calls
    }

    /// Calls in the current minute, and the average per minute over the `window` minutes before it (nil
    /// without any call in the window: an agent without history has no average to be a multiple of).
    func rate(window: Int) -> (current: Int, average: Double?) {
        (current, historyCalls == 0 ? nil : Double(historyCalls) / Double(window))
    }
}

/// A customer's revenue and provider cost this month, for the margin guard.
struct CustomerMargin {
    var month: Int64
    var revenue = Money.zero
    var providerCost = Money.zero

    /// Counts a charge (or a summary row); a sum out of range keeps the old total, which only the guard reads.
    mutating func add(revenue cost: Money, providerCost provider: Money) {
        revenue = (try? revenue.adding(cost)) ?? revenue
        providerCost = (try? providerCost.adding(provider)) ?? providerCost
    }
}

/// The velocity alert and the margin guard.
///
/// Velocity: an agent whose calls this minute exceed `velocityFactor` × its average per minute over the
/// trailing window raises `velocity` (once per crossing: again only after a minute below the threshold).
///
/// Margin guard: when provider cost exceeds revenue for a session, or for a customer's month, by the
/// configured levels — L1 raises `margin_guard`; L2 also throttles that scope's calls to one per
/// `marginThrottleMs` (the rest get `RATE_LIMITED` with `retryAfterMs`); L3 also blocks them (`CONFLICT`).
/// Each level's alert fires once, when the scope first reaches it.
extension TenantActor {
    /// Refuses a call that a margin level throttles or blocks. Runs in the admission turn.
    func marginGate(path: ChargePath, at now: Date) throws(TollgateError) {
        try marginGate("session", path.sessionId, level: sessionMarginLevel(path.sessionId), at: now)
        try marginGate("customer", path.customerId, level: customerMarginLevel(path.customerId, at: now), at: now)
    }

    private func marginGate(_ scope: String, _ id: String, level: Int, at now: Date) throws(TollgateError) {
        if level >= 2 {
            if level >= 3 {
                throw .conflict(
                    "margin guard L3: provider cost exceeds revenue beyond \(guards.marginL3Percent)% for \(scope) "
                        + "\(id); calls are blocked until an operator acts"
                )
            }
            let key = "\(scope):\(id)"
            if let last = marginThrottle[key] {
                let elapsed = Int64((now.timeIntervalSince(last) * 1000).rounded(.down))
                if elapsed < guards.marginThrottleMs {
                    throw .rateLimited(retryAfterMs: guards.marginThrottleMs - elapsed)
                }
            }
            marginThrottle[key] = now
        }
    }

    /// Loads the customer's month of revenue and provider cost on its first call after a start.
    func loadCustomerMargin(_ customerId: String, at now: Date) async throws(TollgateError) {
        let month = PeriodCalendar.monthIndex(now)
        if customerMargins[customerId]?.month == month { return }
        let rows: [UsageRow]
        do {
            rows = try await services.store.usage(
                tenantId: tenantId,
                filter: UsageFilter(
                    customerId: customerId,
                    from: PeriodCalendar.startOfMonth(now)),
                groupBy: [])
        } catch { throw .unavailable("storage is unavailable; nothing was recorded") }
        if customerMargins[customerId]?.month == month { return }
        var margin = CustomerMargin(month: month)
        for row in rows { margin.add(revenue: row.cost, providerCost: row.providerCost) }
        customerMargins[customerId] = margin
    }

    private func sessionMarginLevel(_ sessionId: String) -> Int {
        guard let totals = sessions[sessionId]?.record.totals else { return 0 }
        return guards.marginLevel(revenue: totals.cost, providerCost: totals.providerCost)
    }

    private func customerMarginLevel(_ customerId: String, at now: Date) -> Int {
        guard let margin = customerMargins[customerId], margin.month == PeriodCalendar.monthIndex(now) else { return 0 }
        return guards.marginLevel(revenue: margin.revenue, providerCost: margin.providerCost)
    }

    /// After a call was recorded: count it for velocity and margins, and raise what it crossed.
    func guardsAfter(_ charge: ChargeRecord) {
        let now = charge.at
        // Velocity.
        let minute = Int64((now.timeIntervalSince1970 / 60).rounded(.down))
        var rate = callRates[charge.agentId] ?? CallRate()
        rate.add(1, minute: minute, window: guards.velocityWindowMinutes)
        let (current, average) = rate.rate(window: guards.velocityWindowMinutes)
        let above = average.map { Double(current) > Double(guards.velocityFactor) * $0 } ?? false
        // A crossing stays open while every minute since it fired was above the threshold.
        let crossingOpen = rate.alertedMinute.map { $0 >= minute - 1 } ?? false
        if above, crossingOpen {
            rate.alertedMinute = minute
        } else if above, current >= guards.velocityMinCallsPerMinute, let average {
            rate.alertedMinute = minute
            raise(
                "velocity",
                [
                    "agentId": .string(charge.agentId), "callsThisMinute": .integer(Int64(current)),
                    "averagePerMinute": .string(String(format: "%.2f", average)),
                    "factor": .integer(Int64(guards.velocityFactor)), "sessionId": .string(charge.sessionId),
                ])
        }
        callRates[charge.agentId] = rate

        // Margins: the customer's month here; the session's totals were updated by `callEnded`.
        let month = PeriodCalendar.monthIndex(now)
        var margin =
            customerMargins[charge.customerId].flatMap { $0.month == month ? $0 : nil } ?? CustomerMargin(month: month)
        margin.add(revenue: charge.cost, providerCost: charge.providerCost)
        customerMargins[charge.customerId] = margin
        raiseMargin(
            scope: "customer", id: charge.customerId, revenue: margin.revenue, providerCost: margin.providerCost,
            period: "m\(month)", charge: charge)
        if let totals = sessions[charge.sessionId]?.record.totals {
            raiseMargin(
                scope: "session", id: charge.sessionId, revenue: totals.cost, providerCost: totals.providerCost,
                period: "", charge: charge)
        }
    }

    private func raiseMargin(
        scope: String, id: String, revenue: Money, providerCost: Money, period: String, charge: ChargeRecord
    ) {
        let level = guards.marginLevel(revenue: revenue, providerCost: providerCost)
        guard level > 0, alertMarks.insert("margin|\(scope)|\(id)|\(period)|L\(level)").inserted else { return }
        let action = ["alert", "throttle", "block"][level - 1]
        raise(
            "margin_guard",
            [
                "level": .integer(Int64(level)), "action": .string(action), "scope": .string(scope),
                "scopeId": .string(id), "revenue": .string(revenue.decimalString),
                "providerCost": .string(providerCost.decimalString), "agentId": .string(charge.agentId),
                "sessionId": .string(charge.sessionId),
            ])
    }
}
