import Foundation

/// What one scope has spent: over its lifetime, in the current UTC month, and today.
/// Kept per scope so that a cap set at any moment sees the exact spend of its period without a query.
public struct ScopeSpend: Sendable, Hashable {
    public var lifetime = Money.zero
    public var monthIndex: Int64 = -1
    public var month = Money.zero
    public var dayIndex: Int64 = -1
    public var day = Money.zero

    public init() {}

    /// Spend loaded from storage: its lifetime total, and its totals in the month and day of `current`.
    public init(lifetime: Money, month: Money, day: Money, current: PeriodIndex) {
        self.lifetime = lifetime
        self.monthIndex = current.month
        self.month = month
        self.dayIndex = current.day
        self.day = day
    }

    /// The spend in `period` as of `now`; a month or day that has rolled over counts as zero.
    public func spent(in period: CapPeriod, during now: PeriodIndex) -> Money {
        switch period {
        case .lifetime, .session: return lifetime
        case .month: return monthIndex == now.month ? month : .zero
        case .day: return dayIndex == now.day ? day : .zero
        }
    }

    /// Adds a committed charge made during `at` to every window it falls in.
    public mutating func add(_ amount: Money, during at: PeriodIndex) throws(MoneyError) {
        lifetime = try lifetime.adding(amount)
        if at.month == monthIndex {
            month = try month.adding(amount)
        } else if at.month > monthIndex {
            monthIndex = at.month
            month = amount
        }
        if at.day == dayIndex {
            day = try day.adding(amount)
        } else if at.day > dayIndex {
            dayIndex = at.day
            day = amount
        }
    }
}
