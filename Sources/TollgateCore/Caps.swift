import Foundation

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

/// The window a cap's spend is counted over. Day and month are the capped customer's: its local day, and its
/// billing period (monthly on its anchor day by default), in its time zone (`CapWindows`).
public enum CapPeriod: String, Sendable, Hashable, CaseIterable {
    case lifetime, month, day, session

    /// The window of this period in `windows`, or nil for periods without calendar bounds.
    public func window(in windows: CapWindows) -> BillingPeriod? {
        switch self {
        case .lifetime, .session: return nil
        case .day: return windows.day
        case .month: return windows.month
        }
    }
}

/// UTC days and months, for what is counted the same for every customer (usage grouped by day).
public enum PeriodCalendar {
    public static let utc: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    /// Days since the Unix epoch (UTC): the bucket `usage.summary` groups a charge's day by.
    public static func dayIndex(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 / 86_400).rounded(.down)) }
}

/// The windows a customer's `month` and `day` caps count in at one moment: its billing period and its local day
/// (`BillingCalendar`). Every scope on a call's path belongs to one customer, so one value serves the whole path;
/// worked out once per call and handed down, since a calendar computation per scope and cap would sit on the hot
/// path for nothing.
public struct CapWindows: Sendable, Hashable {
    public var month: BillingPeriod
    public var day: BillingPeriod

    public init(month: BillingPeriod, day: BillingPeriod) {
        self.month = month
        self.day = day
    }

    /// The windows holding `date` in `calendar`.
    public init(_ date: Date, calendar: BillingCalendar) {
        self.init(month: calendar.period(containing: date), day: calendar.day(containing: date))
    }

    /// Whether both windows still hold `date` (then these are its windows too).
    public func contain(_ date: Date) -> Bool { month.contains(date) && day.contains(date) }
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
