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
        var arguments: [Argument] = []
        // Each use of a value binds it anew, so that positional markers (`?`) and numbered ones agree.
        func bind(_ value: Argument) -> String {
            arguments.append(value)
            return placeholder(arguments.count)
        }
        // Columns are named with their table: a product is the charge's subscription's (joined when asked for).
        func conditions() -> String {
            var conditions = ["charges.tenant_id = \(bind(.text(tenantId)))"]
            if let id = filter.customerId { conditions.append("charges.customer_id = \(bind(.text(id)))") }
            if let id = filter.teamId { conditions.append("charges.team_id = \(bind(.text(id)))") }
            if let id = filter.agentId { conditions.append("charges.agent_id = \(bind(.text(id)))") }
            if let id = filter.sessionId { conditions.append("charges.session_id = \(bind(.text(id)))") }
            if let from = filter.from {
                conditions.append("charges.at_ms >= \(bind(.integer(Timestamp.millis(from))))")
            }
            if let to = filter.to { conditions.append("charges.at_ms < \(bind(.integer(Timestamp.millis(to))))") }
            if let id = filter.productId {
                conditions.append(
                    "charges.subscription_id IN (SELECT id FROM subscriptions WHERE tenant_id = "
                        + "\(bind(.text(tenantId))) AND product_id = \(bind(.text(id))))")
            }
            return conditions.joined(separator: " AND ")
        }
        var prefix = ""
        var from = "charges"
        if groupBy.contains(.task) {
            // Each selected charge walks up its invocation graph through the recorded charges that have a parent
            // themselves (the partial index `charges_invocation_children`); its root is where the walk stops.
            prefix = """
                WITH RECURSIVE up(receipt_id, node, parent, depth) AS (
                    SELECT receipt_id, invocation_id, parent_invocation_id, 0 FROM charges WHERE \(conditions())
                    UNION ALL
                    SELECT up.receipt_id, p.invocation_id, p.parent_invocation_id, up.depth + 1
                    FROM up JOIN charges p ON p.tenant_id = \(bind(.text(tenantId))) AND p.invocation_id = up.parent
                        AND p.parent_invocation_id <> ''
                    WHERE up.parent <> '' AND up.depth < \(UsageQuery.taskDepthMax)
                ),
                roots(root_receipt, root) AS (
                    SELECT receipt_id, CASE WHEN parent = '' THEN node ELSE parent END FROM up
                    WHERE parent = '' OR NOT EXISTS (
                        SELECT 1 FROM charges p WHERE p.tenant_id = \(bind(.text(tenantId)))
                            AND p.invocation_id = up.parent AND p.parent_invocation_id <> '')
                )

                """
            from = "charges LEFT JOIN roots ON root_receipt = receipt_id"
        }
        if groupBy.contains(.product) {
            from +=
                " LEFT JOIN subscriptions sp ON sp.tenant_id = charges.tenant_id AND sp.id = charges.subscription_id"
        }
        let keys = groupBy.enumerated().map { index, group in "\(Self.column(group)) AS k\(index)" }
        let grouping = groupBy.map(Self.column) + ["currency"]
        sql =
            prefix + """
                SELECT \((keys + ["currency"]).joined(separator: ", ")),
                    SUM(CASE WHEN quantity > 0 THEN 1 ELSE 0 END) AS calls, SUM(quantity) AS quantity,
                    SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens,
                    SUM(cost_nanos) AS cost, SUM(provider_cost_nanos) AS provider_cost,
                    SUM(CASE WHEN retry_count > 0 THEN 1 ELSE 0 END) AS retries
                FROM \(from) WHERE \(conditions())
                GROUP BY \(grouping.joined(separator: ", "))
                ORDER BY \(grouping.joined(separator: ", "))
                """
        self.arguments = arguments
    }

    static func column(_ group: UsageGroup) -> String {
        switch group {
        case .tool: "charges.tool"
        case .agent: "charges.agent_id"
        case .credential: "charges.credential_id"
        case .session: "charges.session_id"
        case .team: "charges.team_id"
        case .customer: "charges.customer_id"
        case .day: "charges.day"
        case .model: "charges.model"
        // A chain cut at the depth limit (or a cycle) has no root row: the call is a task of its own.
        case .task: "COALESCE(root, charges.invocation_id)"
        case .product: "COALESCE(sp.product_id, '')"
        }
    }

    /// A result row, with the sums of nano-units as `Money`.
    public func row(
        keys: [String], currency: String, calls: Int64, quantity: Int64, inputTokens: Int64,
        outputTokens: Int64, cost: Int64, providerCost: Int64, retries: Int64
    ) -> UsageRow {
        UsageRow(
            keys: keys, currency: currency, calls: calls, quantity: quantity, inputTokens: inputTokens,
            outputTokens: outputTokens, cost: Money(nanos: cost), providerCost: Money(nanos: providerCost),
            retries: retries)
    }
}
