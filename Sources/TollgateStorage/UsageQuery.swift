import Foundation
import TollgateCore

/// Usage filtering and grouping shared by the in-memory store and the tests.
public enum UsageQuery {
    public static func matches(_ charge: ChargeRecord, _ filter: UsageFilter) -> Bool {
        if let id = filter.customerId, charge.customerId != id { return false }
        if let id = filter.teamId, charge.teamId != id { return false }
        if let id = filter.agentId, charge.agentId != id { return false }
        if let id = filter.sessionId, charge.sessionId != id { return false }
        if let from = filter.from, charge.at < from { return false }
        if let to = filter.to, charge.at >= to { return false }
        return true
    }

    public static func key(of charge: ChargeRecord, _ group: UsageGroup) -> String {
        switch group {
        case .tool: charge.tool
        case .agent: charge.agentId
        case .session: charge.sessionId
        case .team: charge.teamId
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
