import Foundation
import TollgateCore
import TollgateJSON
import TollgateStorage

/// A session as `session.get`, `session.open`, `session.close`, `sessions.list` and `session_closed` show
/// it: its state, its totals so far (its final record once closed), and what it will probably cost.
public struct SessionView: JSONRepresentable, Equatable {
    public var record: SessionRecord
    public var state: SessionState
    /// The currency of its amounts: its charges', else its customer's plan's; nil only without a plan.
    public var currency: String?
    /// While open: cost so far scaled to the agent's typical session length.
    public var projectedCost: Money?

    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "sessionId": .string(record.id), "agentId": .string(record.agentId), "state": .string(state.rawValue),
            "openedAt": .string(Timestamp.format(record.openedAt)),
            "calls": .integer(record.totals.calls), "inputTokens": .integer(record.totals.inputTokens),
            "outputTokens": .integer(record.totals.outputTokens),
            "reasoningTokens": .integer(record.totals.reasoningTokens),
            "durationMs": .integer(record.totals.durationMs), "cost": .string(record.totals.cost.decimalString),
            "providerCost": .string(record.totals.providerCost.decimalString),
            "errors": .integer(record.totals.errors),
        ]
        if let currency { fields["currency"] = .string(currency) }
        if let closedAt = record.closedAt { fields["closedAt"] = .string(Timestamp.format(closedAt)) }
        if let outcome = record.outcome { fields["outcome"] = .string(outcome.rawValue) }
        if let metadata = record.metadata, let value = try? JSONCodec.parse(metadata) { fields["metadata"] = value }
        if let projectedCost { fields["projectedCost"] = .string(projectedCost.decimalString) }
        return .object(fields)
    }
}

/// A tenant's session idleness and timeout (`sessions.configure`).
public struct SessionTimeoutsView: JSONRepresentable, Equatable {
    public var idleAfterMs: Int64
    public var sessionTimeoutMs: Int64

    public var json: JSONValue {
        ["idleAfterMs": .integer(idleAfterMs), "sessionTimeoutMs": .integer(sessionTimeoutMs)]
    }
}
