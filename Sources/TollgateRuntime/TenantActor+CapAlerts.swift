import Foundation
import TollgateCore

/// `cap_warning` when spend under a cap crosses its `warnAtPercent`, and `cap_reached` when a cap is hit
/// (spend reaches the limit, or a call is refused by it). Each fires once per crossing: once per cap and
/// period (per session for session caps), again only after the period rolls over or the cap is set anew.
extension TenantActor {
    func capReached(_ refusal: CapRefusal, path: ChargePath, at now: Date) {
        let cap = refusal.cap
        guard mark("reached", cap, path: path, at: now) else { return }
        var fields = Self.fields(of: cap, path: path)
        fields["spent"] = .string(refusal.spent.decimalString)
        fields["requested"] = .string(refusal.requested.decimalString)
        raise("cap_reached", fields)
    }

    /// After a call costing `cost` was recorded on `path` (whose `scopes` and `period` the caller has at hand).
    func capWarnings(after cost: Money, path: ChargePath, scopes: [ScopeRef], period: PeriodIndex, at now: Date) {
        guard cost > .zero, !capLedger.caps.isEmpty else { return }
        for cap in capLedger.caps(on: scopes) {
            guard let used = capLedger.used(cap, on: scopes, during: period) else { continue }
            let before = Int128(used.nanos) - Int128(cost.nanos)
            if Int128(used.nanos) >= Int128(cap.limit.nanos) {
                if mark("reached", cap, path: path, at: now) {
                    var fields = Self.fields(of: cap, path: path)
                    fields["spent"] = .string(used.decimalString)
                    raise("cap_reached", fields)
                }
            }
            guard let percent = cap.warnAtPercent else { continue }
            // used ≥ limit × percent / 100, in integers.
            let threshold = Int128(cap.limit.nanos) * Int128(percent)
            if Int128(used.nanos) * 100 >= threshold, before * 100 < threshold,
                mark("warning", cap, path: path, at: now)
            {
                var fields = Self.fields(of: cap, path: path)
                fields["spent"] = .string(used.decimalString)
                fields["warnAtPercent"] = .integer(Int64(percent))
                raise("cap_warning", fields)
            }
        }
    }

    /// Forgets the crossings of a cap that was set anew (its limit changed, so it may be crossed again).
    func clearMarks(of capId: String) {
        alertMarks = alertMarks.filter { !$0.contains("|\(capId)|") }
    }

    /// Records that `what` fired for `cap` in its current period; false if it already had.
    private func mark(_ what: String, _ cap: Cap, path: ChargePath, at now: Date) -> Bool {
        let period: String
        switch cap.period {
        case .lifetime: period = "life"
        case .month: period = "m\(PeriodCalendar.monthIndex(now))"
        case .day: period = "d\(PeriodCalendar.dayIndex(now))"
        case .session: period = "s\(path.sessionId)"
        }
        return alertMarks.insert("\(what)|\(cap.id)|\(period)").inserted
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
