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

/// An alert as the runtime raises it, typed by kind. Its `json` is the params of the `alert` notification
/// besides `kind`, `alertId` and `at`, which are added when it is stored (`TenantActor.raise`).
public enum Alert: JSONRepresentable, Equatable {
    case capWarning(CapCrossing)
    case capReached(CapCrossing)
    case sessionClosed(SessionView)
    case velocity(VelocityCrossing)
    case marginGuard(MarginCrossing)

    public var kind: AlertKind {
        switch self {
        case .capWarning: .capWarning
        case .capReached: .capReached
        case .sessionClosed: .sessionClosed
        case .velocity: .velocity
        case .marginGuard: .marginGuard
        }
    }

    public var json: JSONValue {
        switch self {
        case .capWarning(let crossing), .capReached(let crossing): return crossing.json
        case .sessionClosed(let session): return session.json
        case .velocity(let crossing): return crossing.json
        case .marginGuard(let crossing): return crossing.json
        }
    }
}

/// Spend under a cap crossing its warning threshold or its limit, or a call refused by it (`requested`).
public struct CapCrossing: JSONRepresentable, Equatable {
    public var cap: Cap
    public var agentId: String
    public var sessionId: String
    /// Spent in the cap's period, holds included.
    public var spent: Money
    /// The refused call's price, when a call was refused.
    public var requested: Money?

    public var json: JSONValue {
        var fields = CapView(cap: cap).json.objectValue ?? [:]
        fields["agentId"] = .string(agentId)
        fields["sessionId"] = .string(sessionId)
        fields["spent"] = .string(spent.decimalString)
        if let requested { fields["requested"] = .string(requested.decimalString) }
        return .object(fields)
    }
}

/// An agent's calls this minute above `factor` times its average per minute.
public struct VelocityCrossing: JSONRepresentable, Equatable {
    public var agentId: String
    public var sessionId: String
    public var callsThisMinute: Int
    public var averagePerMinute: Double
    public var factor: Int

    public var json: JSONValue {
        [
            "agentId": .string(agentId), "callsThisMinute": .integer(Int64(callsThisMinute)),
            "averagePerMinute": .string(String(format: "%.2f", averagePerMinute)),
            "factor": .integer(Int64(factor)), "sessionId": .string(sessionId),
        ]
    }
}

/// A session's or a customer's month's provider cost above revenue by a margin guard level.
public struct MarginCrossing: JSONRepresentable, Equatable {
    public enum Scope: String, Sendable { case session, customer }
    public var level: Int
    public var scope: Scope
    public var scopeId: String
    public var revenue: Money
    public var providerCost: Money
    public var agentId: String
    public var sessionId: String

    /// What the level does: L1 alerts, L2 also throttles, L3 also blocks.
    public var action: String { ["alert", "throttle", "block"][level - 1] }

    public var json: JSONValue {
        [
            "level": .integer(Int64(level)), "action": .string(action), "scope": .string(scope.rawValue),
            "scopeId": .string(scopeId), "revenue": .string(revenue.decimalString),
            "providerCost": .string(providerCost.decimalString), "agentId": .string(agentId),
            "sessionId": .string(sessionId),
        ]
    }
}

/// The alerts already raised for the current crossing of something (a cap in its period, a margin level of a
/// scope), so that each fires once: again only after the period rolls over or the cap is set anew.
struct AlertMarks {
    private var marks: Set<String> = []

    /// Records `mark`; false if it was recorded already.
    mutating func first(_ mark: String) -> Bool { marks.insert(mark).inserted }

    /// Forgets the crossings of a cap that was set anew (its limit changed, so it may be crossed again).
    mutating func clear(capId: String) { marks = marks.filter { !$0.contains("|\(capId)|") } }

    /// Records that `what` fired for `cap` in its current window (`windows`; per session for session caps).
    mutating func first(_ what: String, _ cap: Cap, sessionId: String, during windows: CapWindows) -> Bool {
        let period: String
        switch cap.period {
        case .lifetime: period = "life"
        case .month: period = "m\(Timestamp.millis(windows.month.start))"
        case .day: period = "d\(Timestamp.millis(windows.day.start))"
        case .session: period = "s\(sessionId)"
        }
        return first("\(what)|\(cap.id)|\(period)")
    }
}

/// `cap_warning` when spend under a cap crosses its `warnAtPercent`, and `cap_reached` when a cap is hit
/// (spend reaches the limit, or a call is refused by it). Each fires once per crossing (`AlertMarks`).
enum CapAlerts {
    /// A call on `path` was refused by `refusal`'s cap (`windows`: the call's cap windows).
    static func refused(
        _ refusal: CapRefusal, path: ChargePath, during windows: CapWindows, marks: inout AlertMarks
    ) -> Alert? {
        let cap = refusal.cap
        guard marks.first("reached", cap, sessionId: path.sessionId, during: windows) else { return nil }
        return .capReached(
            CapCrossing(
                cap: cap, agentId: path.agentId, sessionId: path.sessionId, spent: refusal.spent,
                requested: refusal.requested))
    }

    /// A call costing `cost` was recorded on `path` (whose `scopes` and cap `windows` the caller has at hand).
    static func recorded(
        _ cost: Money, path: ChargePath, scopes: [ScopeRef], during windows: CapWindows, ledger: CapLedger,
        marks: inout AlertMarks
    ) -> [Alert] {
        guard cost > .zero, !ledger.caps.isEmpty else { return [] }
        var alerts: [Alert] = []
        for cap in ledger.caps(on: scopes) {
            guard let used = ledger.used(cap, on: scopes, during: windows) else { continue }
            let crossing = CapCrossing(cap: cap, agentId: path.agentId, sessionId: path.sessionId, spent: used)
            let before = Int128(used.nanos) - Int128(cost.nanos)
            if Int128(used.nanos) >= Int128(cap.limit.nanos),
                marks.first("reached", cap, sessionId: path.sessionId, during: windows)
            {
                alerts.append(.capReached(crossing))
            }
            guard let percent = cap.warnAtPercent else { continue }
            // used ≥ limit × percent / 100, in integers.
            let threshold = Int128(cap.limit.nanos) * Int128(percent)
            if Int128(used.nanos) * 100 >= threshold, before * 100 < threshold,
                marks.first("warning", cap, sessionId: path.sessionId, during: windows)
            {
                alerts.append(.capWarning(crossing))
            }
        }
        return alerts
    }
}
