import Foundation
import TollgateCore

/// The `usage.summary` query, written once for both SQL backends. Group keys are columns, never caller
/// text: `groupBy` is a closed enum, and every caller-supplied value is a bound parameter.
public struct UsageSQL: Sendable {
    public enum Argument: Sendable { case text(String), integer(Int64) }

    public let sql: String
    public let arguments: [Argument]

    /// - Parameter placeholder: the backend's bind marker for the n-th argument (1-based): `?` or `$n`.
    public init(tenantId: String, filter: UsageFilter, groupBy: [UsageGroup], placeholder: (Int) -> String) {
        var arguments: [Argument] = [.text(tenantId)]
        var conditions = ["tenant_id = \(placeholder(1))"]
        func add(_ column: String, _ op: String, _ value: Argument) {
            arguments.append(value)
            conditions.append("\(column) \(op) \(placeholder(arguments.count))")
        }
        if let id = filter.customerId { add("customer_id", "=", .text(id)) }
        if let id = filter.teamId { add("team_id", "=", .text(id)) }
        if let id = filter.agentId { add("agent_id", "=", .text(id)) }
        if let id = filter.sessionId { add("session_id", "=", .text(id)) }
        if let from = filter.from { add("at_ms", ">=", .integer(Timestamp.millis(from))) }
        if let to = filter.to { add("at_ms", "<", .integer(Timestamp.millis(to))) }
        let keys = groupBy.enumerated().map { index, group in "\(Self.column(group)) AS k\(index)" }
        let grouping = groupBy.map(Self.column) + ["currency"]
        sql = """
            SELECT \((keys + ["currency"]).joined(separator: ", ")), COUNT(*) AS calls, SUM(quantity) AS quantity,
                SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens,
                SUM(cost_nanos) AS cost, SUM(provider_cost_nanos) AS provider_cost
            FROM charges WHERE \(conditions.joined(separator: " AND "))
            GROUP BY \(grouping.joined(separator: ", "))
            ORDER BY \(grouping.joined(separator: ", "))
            """
        self.arguments = arguments
    }

    static func column(_ group: UsageGroup) -> String {
        switch group {
        case .tool: "tool"
        case .agent: "agent_id"
        case .session: "session_id"
        case .team: "team_id"
        case .day: "day"
        case .model: "model"
        }
    }

    /// A result row, with the sums of nano-units as `Money`.
    public func row(
        keys: [String], currency: String, calls: Int64, quantity: Int64, inputTokens: Int64,
        outputTokens: Int64, cost: Int64, providerCost: Int64
    ) -> UsageRow {
        UsageRow(
            keys: keys, currency: currency, calls: calls, quantity: quantity, inputTokens: inputTokens,
            outputTokens: outputTokens, cost: Money(nanos: cost), providerCost: Money(nanos: providerCost))
    }
}
