import Foundation

/// What one scope has spent: over its lifetime, in its customer's current billing period, and on its current
/// local day (`CapWindows`). Kept per scope so that a cap set at any moment sees the exact spend of its period
/// without a query.
public struct ScopeSpend: Sendable, Hashable {
    public var lifetime = Money.zero
    /// The window `month` counts in, nil until something is counted in one.
    public var monthWindow: BillingPeriod?
    public var month = Money.zero
    public var dayWindow: BillingPeriod?
    public var day = Money.zero

    public init() {}

    /// A lifetime total alone (a session's: its caps count nothing else).
    public init(lifetime: Money) { self.lifetime = lifetime }

    /// Spend loaded from storage: its lifetime total, and its totals in `windows`.
    public init(lifetime: Money, month: Money, day: Money, windows: CapWindows) {
        self.lifetime = lifetime
        self.monthWindow = windows.month
        self.month = month
        self.dayWindow = windows.day
        self.day = day
    }

    /// The spend in `period` within `windows` (the windows of the moment asked about); a window that has rolled
    /// over counts as zero.
    public func spent(in period: CapPeriod, during windows: CapWindows) -> Money {
        switch period {
        case .lifetime, .session: return lifetime
        case .month: return monthWindow == windows.month ? month : .zero
        case .day: return dayWindow == windows.day ? day : .zero
        }
    }

    /// Adds a committed charge made during `windows` to every window it falls in.
    public mutating func add(_ amount: Money, during windows: CapWindows) throws(MoneyError) {
        lifetime = try lifetime.adding(amount)
        try Self.add(amount, in: windows.month, to: &monthWindow, &month)
        try Self.add(amount, in: windows.day, to: &dayWindow, &day)
    }

    /// A charge in the window kept adds to it. One in a window wholly before it (a commit stamped before the turn
    /// of a period that arrives after a later one) counts in the lifetime total only. Any other window starts
    /// afresh: a later one (the old window rolled over), or one that overlaps the kept one because the customer's
    /// calendar changed (a new subscription with another cadence or anchor) — from then on the new calendar's
    /// window counts, rather than a window no cap asks about any more.
    private static func add(
        _ amount: Money, in window: BillingPeriod, to kept: inout BillingPeriod?, _ total: inout Money
    ) throws(MoneyError) {
        if let current = kept {
            if window == current { total = try total.adding(amount) }
            if window == current || window.end <= current.start { return }
        }
        kept = window
        total = amount
    }
}
