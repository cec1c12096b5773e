import Foundation
import TollgateCore
import TollgateJSON

/// The kinds of alert a tenant raises; the raw values are the wire's.
public enum AlertKind: String, Sendable, CaseIterable {
    /// Spend under a cap crossed its `warnAtPercent`.
    case capWarning = "cap_warning"
    /// A cap was hit: spend reached its limit, or a call was refused by it.
    case capReached = "cap_reached"
    /// A session's final billing record was written.
    case sessionClosed = "session_closed"
    /// An agent's calls this minute are many times its usual rate.
    case velocity
    /// Provider cost ran above revenue by a margin guard level.
    case marginGuard = "margin_guard"
}

/// An alert as the runtime raises it: its kind and its fields (the params of the `alert` notification,
/// besides `kind`, `alertId` and `at`, which are added when it is stored).
struct Alert: Equatable {
    var kind: AlertKind
    var fields: [String: JSONValue]
}

/// The alerts already raised for the current crossing of something (a cap in its period, a margin level of a
/// scope), so that each fires once: again only after the period rolls over or the cap is set anew.
struct AlertMarks {
    private var marks: Set<String> = []

    /// Records `mark`; false if it was recorded already.
    mutating func first(_ mark: String) -> Bool { marks.insert(mark).inserted }

    /// Forgets the crossings of a cap that was set anew (its limit changed, so it may be crossed again).
    mutating func clear(capId: String) { marks = marks.filter { !$0.contains("|\(capId)|") } }

    /// Records that `what` fired for `cap` in its current period (per session for session caps).
    mutating func first(_ what: String, _ cap: Cap, sessionId: String, at now: Date) -> Bool {
        let period: String
        switch cap.period {
        case .lifetime: period = "life"
        case .month: period = "m\(PeriodCalendar.monthIndex(now))"
        case .day: period = "d\(PeriodCalendar.dayIndex(now))"
        case .session: period = "s\(sessionId)"
        }
        return first("\(what)|\(cap.id)|\(period)")
    }
}

/// `cap_warning` when spend under a cap crosses its `warnAtPercent`, and `cap_reached` when a cap is hit
/// (spend reaches the limit, or a call is refused by it). Each fires once per crossing (`AlertMarks`).
enum CapAlerts {
    /// A call on `path` was refused by `refusal`'s cap.
    static func refused(_ refusal: CapRefusal, path: ChargePath, at now: Date, marks: inout AlertMarks) -> Alert? {
        let cap = refusal.cap
        guard marks.first("reached", cap, sessionId: path.sessionId, at: now) else { return nil }
        var fields = Self.fields(of: cap, path: path)
        fields["spent"] = .string(refusal.spent.decimalString)
        fields["requested"] = .string(refusal.requested.decimalString)
        return Alert(kind: .capReached, fields: fields)
    }

    /// A call costing `cost` was recorded on `path` (whose `scopes` and `period` the caller has at hand).
    static func recorded(
        _ cost: Money, path: ChargePath, scopes: [ScopeRef], period: PeriodIndex, at now: Date, ledger: CapLedger,
        marks: inout AlertMarks
    ) -> [Alert] {
        guard cost > .zero, !ledger.caps.isEmpty else { return [] }
        var alerts: [Alert] = []
        for cap in ledger.caps(on: scopes) {
            guard let used = ledger.used(cap, on: scopes, during: period) else { continue }
            let before = Int128(used.nanos) - Int128(cost.nanos)
            if Int128(used.nanos) >= Int128(cap.limit.nanos),
                marks.first("reached", cap, sessionId: path.sessionId, at: now)
            {
                var fields = Self.fields(of: cap, path: path)
                fields["spent"] = .string(used.decimalString)
                alerts.append(Alert(kind: .capReached, fields: fields))
            }
            guard let percent = cap.warnAtPercent else { continue }
            // used ≥ limit × percent / 100, in integers.
            let threshold = Int128(cap.limit.nanos) * Int128(percent)
            if Int128(used.nanos) * 100 >= threshold, before * 100 < threshold,
                marks.first("warning", cap, sessionId: path.sessionId, at: now)
            {
                var fields = Self.fields(of: cap, path: path)
                fields["spent"] = .string(used.decimalString)
                fields["warnAtPercent"] = .integer(Int64(percent))
                alerts.append(Alert(kind: .capWarning, fields: fields))
            }
        }
        return alerts
    }

    private static func fields(of cap: Cap, path: ChargePath) -> [String: JSONValue] {
        var fields: [String: JSONValue] = [
            "capId": .string(cap.id), "scope": .string(cap.target.scope.rawValue), "scopeId": .string(cap.target.id),
            "period": .string(cap.period.rawValue), "limit": .string(cap.limit.decimalString),
            "agentId": .string(path.agentId), "sessionId": .string(path.sessionId),
        ]
        if let percent = cap.warnAtPercent { fields["warnAtPercent"] = .integer(Int64(percent)) }
        return fields
    }
}
