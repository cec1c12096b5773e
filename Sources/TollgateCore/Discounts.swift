import Foundation

/// A discount a customer's invoices get: a percentage off, or a fixed amount off each period, while it is in force.
public struct Discount: Sendable, Hashable {
    public enum Off: Sendable, Hashable {
        /// Percent off (`12.5` is 12.5 %), from above 0 to 100.
        case percent(Money)
        /// A fixed amount off each period's invoice, in `currency`.
        case amount(Money, currency: String)
    }

    public var id: String
    public var tenantId: String
    public var customerId: String
    public var off: Off
    public var startsAt: Date
    /// When it stops; nil: never.
    public var endsAt: Date?
    public var description: String
    public var createdAt: Date

    public init(
        id: String, tenantId: String, customerId: String, off: Off, startsAt: Date, endsAt: Date?,
        description: String = "", createdAt: Date
    ) {
        self.id = id
        self.tenantId = tenantId
        self.customerId = customerId
        self.off = off
        self.startsAt = startsAt
        self.endsAt = endsAt
        self.description = description
        self.createdAt = createdAt
    }

    /// Whether it applies to the invoice of `period`: it is in force as the period ends (at its last millisecond),
    /// as an invoice is made then — a discount that starts or stops inside a period applies to it entirely, or
    /// not at all, and never in part.
    public func applies(to period: BillingPeriod) -> Bool {
        let last = period.end.addingTimeInterval(-0.001)
        return startsAt <= last && (endsAt.map { last < $0 } ?? true)
    }

    /// The order discounts are taken off in: the oldest first.
    public static func appliesBefore(_ lhs: Discount, _ rhs: Discount) -> Bool {
        (lhs.createdAt, lhs.id) < (rhs.createdAt, rhs.id)
    }
}
