import Foundation
import TollgateCore

/// Usage filtering and grouping shared by the in-memory store and the tests.
public enum UsageQuery {
    /// `products`: the product of each subscription, by subscription id (for `productId` and the `product` group).
    public static func matches(_ charge: ChargeRecord, _ filter: UsageFilter, products: [String: String] = [:]) -> Bool
    {
        if let id = filter.productId, products[charge.subscriptionId] != id { return false }
        if let id = filter.customerId, charge.customerId != id { return false }
        if let id = filter.teamId, charge.teamId != id { return false }
        if let id = filter.agentId, charge.agentId != id { return false }
        if let id = filter.sessionId, charge.sessionId != id { return false }
        if let from = filter.from, charge.at < from { return false }
        if let to = filter.to, charge.at >= to { return false }
        return true
    }

    /// How far up an invocation graph a task's root is looked for: deeper chains (or a cycle) stop there.
    public static let taskDepthMax = 32

    /// The root of each charge's invocation graph, by receipt: follow `parentInvocationId` up through the
    /// recorded charges that have a parent themselves; the root is the first invocation that has none, or that
    /// was never recorded. Resolved when asked, so the order charges arrive in cannot change the answer.
    public static func taskRoots(_ charges: [ChargeRecord]) -> [String: String] {
        var parents: [String: String] = [:]
        for charge in charges { if let parent = charge.parentInvocationId { parents[charge.invocationId] = parent } }
        var roots: [String: String] = [:]
        for charge in charges {
            var node = charge.invocationId
            var depth = 0
            while let parent = parents[node], depth < taskDepthMax {
                node = parent
                depth += 1
            }
            // A chain cut at the limit (or a cycle) is a task of its own.
            roots[charge.receiptId] = parents[node] == nil ? node : charge.invocationId
        }
        return roots
    }

    public static func key(
        of charge: ChargeRecord, _ group: UsageGroup, roots: [String: String] = [:], products: [String: String] = [:]
    ) -> String {
        switch group {
        case .product: products[charge.subscriptionId] ?? ""
        case .task: roots[charge.receiptId] ?? charge.invocationId
        case .tool: charge.tool
        case .agent: charge.agentId
        case .credential: charge.credentialId
        case .session: charge.sessionId
        case .team: charge.teamId
        case .customer: charge.customerId
        case .day: dayString(PeriodCalendar.dayIndex(charge.at))
        case .model: charge.model ?? ""
        }
    }

    /// `YYYY-MM-DD` of a day index (days since 1970-01-01, UTC).
    public static func dayString(_ dayIndex: Int64) -> String {
        let date = Date(timeIntervalSince1970: Double(dayIndex) * 86_400)
        let parts = PeriodCalendar.utc.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", parts.year!, parts.month!, parts.day!)
    }
}
