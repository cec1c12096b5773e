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
    /// billing period. L1 raises an alert; L2 also throttles; L3 also blocks. 0 turns a level off.
    public var marginL1Percent: Int
    public var marginL2Percent: Int
    public var marginL3Percent: Int
    /// At L2, one call per this many milliseconds is let through; the others get RATE_LIMITED.
    public var marginThrottleMs: Int

    public init(
        velocityFactor: Int = 3, velocityWindowMinutes: Int = 60, velocityMinCallsPerMinute: Int = 10,
        marginL1Percent: Int = 100, marginL2Percent: Int = 125, marginL3Percent: Int = 150,
        marginThrottleMs: Int = 1000
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

/// A customer's revenue and provider cost in its current billing period, for the margin guard.
struct CustomerMargin {
    var month: BillingPeriod
    var revenue = Money.zero
    var providerCost = Money.zero

    /// Counts a charge (or a summary row); a sum out of range keeps the old total, which only the guard reads.
    mutating func add(revenue cost: Money, providerCost provider: Money) {
        revenue = (try? revenue.adding(cost)) ?? revenue
        providerCost = (try? providerCost.adding(provider)) ?? providerCost
    }
}

/// The velocity alert and the margin guard, as a value the tenant's actor holds.
///
/// Velocity: an agent whose calls this minute exceed `velocityFactor` × its average per minute over the
/// trailing window raises `velocity` (once per crossing: again only after a minute below the threshold).
///
/// Margin guard: when provider cost exceeds revenue for a session, or for a customer's billing period, by the
/// configured levels — L1 raises `margin_guard`; L2 also throttles that scope's calls to one per
/// `marginThrottleMs` (the rest get `RATE_LIMITED` with `retryAfterMs`); L3 also blocks them (`CONFLICT`).
/// Each level's alert fires once, when the scope first reaches it.
struct SpendGuards {
    let limits: GuardLimits
    /// Calls per minute per agent.
    private var callRates: [String: CallRate] = [:]
    /// Each customer's revenue and provider cost in its billing period, once loaded (`needsMargin`).
    private var margins: [String: CustomerMargin] = [:]
    /// When the last call of each throttled scope (`session:<id>`, `customer:<id>`) was let through.
    private var throttle: [String: Date] = [:]

    init(limits: GuardLimits) { self.limits = limits }

    /// Whether `customerId`'s billing period `month` must be loaded (`loadMargin`) before its next call is
    /// admitted.
    func needsMargin(_ customerId: String, in month: BillingPeriod) -> Bool { margins[customerId]?.month != month }

    /// `customerId`'s billing period `month` as storage sums it (no-op if loaded meanwhile).
    mutating func loadMargin(_ customerId: String, in month: BillingPeriod, revenue: Money, providerCost: Money) {
        guard needsMargin(customerId, in: month) else { return }
        var margin = CustomerMargin(month: month)
        margin.add(revenue: revenue, providerCost: providerCost)
        margins[customerId] = margin
    }

    /// Refuses a call that a margin level throttles or blocks; `session` is the call's session's totals, `month`
    /// its customer's current billing period. Runs in the admission turn.
    mutating func admit(
        _ path: ChargePath, session: SessionTotals?, month: BillingPeriod, at now: Date
    ) throws(TollgateError) {
        let sessionLevel = session.map { limits.marginLevel(revenue: $0.cost, providerCost: $0.providerCost) } ?? 0
        try gate("session", path.sessionId, level: sessionLevel, at: now)
        try gate("customer", path.customerId, level: customerLevel(path.customerId, in: month), at: now)
    }

    private mutating func gate(_ scope: String, _ id: String, level: Int, at now: Date) throws(TollgateError) {
        guard level >= 2 else { return }
        if level >= 3 {
            throw .conflict(
                "margin guard L3: provider cost exceeds revenue beyond \(limits.marginL3Percent)% for \(scope) "
                    + "\(id); calls are blocked until an operator acts")
        }
        let key = "\(scope):\(id)"
        if let last = throttle[key] {
            let elapsed = Int64((now.timeIntervalSince(last) * 1000).rounded(.down))
            let throttleMs = Int64(limits.marginThrottleMs)
            if elapsed < throttleMs { throw .rateLimited(retryAfterMs: throttleMs - elapsed) }
        }
        throttle[key] = now
    }

    private func customerLevel(_ customerId: String, in month: BillingPeriod) -> Int {
        guard let margin = margins[customerId], margin.month == month else { return 0 }
        return limits.marginLevel(revenue: margin.revenue, providerCost: margin.providerCost)
    }

    /// After `charge` was recorded (`session`: its session's totals with it; `month`: its customer's billing
    /// period at the charge's time): counts it for velocity and margins, and returns the alerts it raised.
    mutating func recorded(
        _ charge: ChargeRecord, session: SessionTotals?, month: BillingPeriod, marks: inout AlertMarks
    ) -> [Alert] {
        let now = charge.at
        var alerts: [Alert] = []
        // Velocity.
        let minute = Int64((now.timeIntervalSince1970 / 60).rounded(.down))
        var rate = callRates[charge.agentId] ?? CallRate()
        rate.add(1, minute: minute, window: limits.velocityWindowMinutes)
        let (current, average) = rate.rate(window: limits.velocityWindowMinutes)
        let above = average.map { Double(current) > Double(limits.velocityFactor) * $0 } ?? false
        // A crossing stays open while every minute since it fired was above the threshold.
        let crossingOpen = rate.alertedMinute.map { $0 >= minute - 1 } ?? false
        if above, crossingOpen {
            rate.alertedMinute = minute
        } else if above, current >= limits.velocityMinCallsPerMinute, let average {
            rate.alertedMinute = minute
            alerts.append(
                .velocity(
                    VelocityCrossing(
                        agentId: charge.agentId, sessionId: charge.sessionId, callsThisMinute: current,
                        averagePerMinute: average, factor: limits.velocityFactor)))
        }
        callRates[charge.agentId] = rate

        // Margins: the customer's billing period, and the session's totals.
        var margin = margins[charge.customerId].flatMap { $0.month == month ? $0 : nil } ?? CustomerMargin(month: month)
        margin.add(revenue: charge.cost, providerCost: charge.providerCost)
        margins[charge.customerId] = margin
        alerts += marginAlert(
            scope: .customer, id: charge.customerId, revenue: margin.revenue, providerCost: margin.providerCost,
            period: "m\(Timestamp.millis(month.start))", charge: charge, marks: &marks)
        if let session {
            alerts += marginAlert(
                scope: .session, id: charge.sessionId, revenue: session.cost, providerCost: session.providerCost,
                period: "", charge: charge, marks: &marks)
        }
        return alerts
    }

    private func marginAlert(
        scope: MarginCrossing.Scope, id: String, revenue: Money, providerCost: Money, period: String,
        charge: ChargeRecord, marks: inout AlertMarks
    ) -> [Alert] {
        let level = limits.marginLevel(revenue: revenue, providerCost: providerCost)
        guard level > 0, marks.first("margin|\(scope.rawValue)|\(id)|\(period)|L\(level)") else { return [] }
        return [
            .marginGuard(
                MarginCrossing(
                    level: level, scope: scope, scopeId: id, revenue: revenue, providerCost: providerCost,
                    agentId: charge.agentId, sessionId: charge.sessionId))
        ]
    }
}
