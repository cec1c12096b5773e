import Foundation
import Synchronization

/// A level of the hierarchy a cap can be set on.
public enum CapScope: String, Sendable, Hashable, CaseIterable {
    case session, agent, team, customer
    /// A credential's own `spendLimit` (set with `credentials.issue`, not with `caps.set`).
    case credential

    /// The scopes an operator may name in `caps.set`.
    public static let settable: [CapScope] = [.session, .agent, .team, .customer]
}

/// One object at one scope, e.g. `(agent, agt_…)`.
public struct ScopeRef: Sendable, Hashable, CustomStringConvertible {
    public var scope: CapScope
    public var id: String
    public init(_ scope: CapScope, _ id: String) {
        self.scope = scope
        self.id = id
    }
    public var description: String { "\(scope.rawValue):\(id)" }
}

/// The window a cap's spend is counted over. Day and month are calendar periods in UTC.
public enum CapPeriod: String, Sendable, Hashable, CaseIterable {
    case lifetime, month, day, session

    /// The start of the period containing `date`, or nil for periods without calendar bounds.
    public func start(containing date: Date) -> Date? {
        switch self {
        case .lifetime, .session: return nil
        case .day: return PeriodCalendar.startOfDay(date)
        case .month: return PeriodCalendar.startOfMonth(date)
        }
    }

    /// When the period containing `date` ends (and the cap resets), or nil if it never does.
    public func end(containing date: Date) -> Date? {
        switch self {
        case .lifetime, .session: return nil
        case .day: return PeriodCalendar.startOfDay(date).addingTimeInterval(86_400)
        case .month: return PeriodCalendar.startOfNextMonth(date)
        }
    }
}

public enum PeriodCalendar {
    public static let utc: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    public static func startOfDay(_ date: Date) -> Date { utc.startOfDay(for: date) }

    public static func startOfMonth(_ date: Date) -> Date { month(containing: date).start }

    public static func startOfNextMonth(_ date: Date) -> Date { month(containing: date).end }

    /// The UTC month containing `date`: its bounds and its index. Every call's path asks for the month
    /// several times (caps, pricing state, margins) and a calendar computation costs microseconds, so the
    /// current month is remembered; a date outside it is computed afresh.
    public static func month(containing date: Date) -> (start: Date, end: Date, index: Int64) {
        if let cached = monthCache.withLock({ $0 }), date >= cached.start, date < cached.end { return cached }
        let parts = utc.dateComponents([.year, .month], from: date)
        let start = utc.date(from: parts)!
        let month = (
            start: start, end: utc.date(byAdding: .month, value: 1, to: start)!,
            index: Int64((parts.year! - 1970) * 12 + (parts.month! - 1))
        )
        monthCache.withLock { $0 = month }
        return month
    }

    private static let monthCache = Mutex<(start: Date, end: Date, index: Int64)?>(nil)

    /// Days since the Unix epoch (UTC): the bucket in which charges are summed for day caps.
    public static func dayIndex(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 / 86_400).rounded(.down)) }
    /// Months since January 1970: the bucket for month caps.
    public static func monthIndex(_ date: Date) -> Int64 { month(containing: date).index }
}

/// The UTC month and day a moment falls in, as indices. Computed once per charge or check and handed down,
/// because a calendar computation per scope and cap would sit on the hot path for nothing.
public struct PeriodIndex: Sendable, Hashable {
    public var month: Int64
    public var day: Int64

    public init(_ date: Date) {
        month = PeriodCalendar.monthIndex(date)
        day = PeriodCalendar.dayIndex(date)
    }
}

/// A spend cap as configured with `caps.set`.
public struct Cap: Sendable, Hashable {
    public var id: String
    public var tenantId: String
    public var target: ScopeRef
    public var limit: Money
    public var period: CapPeriod
    /// The soft threshold, as a percentage of `limit` (1–100), at which a warning is raised.
    public var warnAtPercent: Int?
    public init(id: String, tenantId: String, target: ScopeRef, limit: Money, period: CapPeriod, warnAtPercent: Int?) {
        self.id = id
        self.tenantId = tenantId
        self.target = target
        self.limit = limit
        self.period = period
        self.warnAtPercent = warnAtPercent
    }
}
