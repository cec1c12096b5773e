import Foundation

/// Credit granted to a customer: prepaid (bought) or promotional (given), in one currency, drawn down by the
/// customer's usage from the moment it is granted until it expires.
public struct CreditGrant: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case prepaid, promotional
    }

    public var id: String
    public var tenantId: String
    public var customerId: String
    public var currency: String
    public var amount: Money
    public var kind: Kind
    /// Grants are drawn lowest priority number first; among equals, the one expiring soonest (never last).
    public var priority: Int
    public var grantedAt: Date
    /// Usage charged at or after this moment draws nothing from the grant; what it has left then is lost.
    public var expiresAt: Date?
    public var description: String

    public init(
        id: String, tenantId: String, customerId: String, currency: String, amount: Money, kind: Kind,
        priority: Int, grantedAt: Date, expiresAt: Date?, description: String = ""
    ) {
        self.id = id
        self.tenantId = tenantId
        self.customerId = customerId
        self.currency = currency
        self.amount = amount
        self.kind = kind
        self.priority = priority
        self.grantedAt = grantedAt
        self.expiresAt = expiresAt
        self.description = description
    }

    /// Whether usage charged at `date` draws from this grant.
    public func isActive(at date: Date) -> Bool {
        grantedAt <= date && (expiresAt.map { date < $0 } ?? true)
    }

    /// The order grants are drawn in: by priority, then the soonest expiry (a grant that never expires last),
    /// then the oldest grant, then by id, so that every run draws alike.
    public static func drawsBefore(_ lhs: CreditGrant, _ rhs: CreditGrant) -> Bool {
        if lhs.priority != rhs.priority { return lhs.priority < rhs.priority }
        let (left, right) = (lhs.expiresAt ?? .distantFuture, rhs.expiresAt ?? .distantFuture)
        if left != right { return left < right }
        if lhs.grantedAt != rhs.grantedAt { return lhs.grantedAt < rhs.grantedAt }
        return lhs.id < rhs.id
    }
}

/// What one grant paid towards one charge.
public struct CreditDraw: Sendable, Hashable {
    public var grantId: String
    public var amount: Money

    public init(grantId: String, amount: Money) {
        self.grantId = grantId
        self.amount = amount
    }
}

/// One customer's credit as a pure value: its grants in draw order, what each has paid on invoices, and what
/// each has paid for usage no invoice holds yet.
///
/// Usage draws credit as it is charged: a charge's price is paid by the grants active at its moment (granted
/// at or before it, not expired), in draw order (`CreditGrant.drawsBefore`), each as far as it has anything left;
/// what no grant covers is owed. A charge that gives money back (a re-rating's credit) draws nothing. Closing a
/// period runs the same draws over the period's charges (`CreditStage`), so a period closed after the ones before
/// it applies what the live balance showed; its invoice's credit lines then become what the grants `invoiced`.
public struct CreditWallet: Sendable, Hashable {
    public private(set) var grants: [CreditGrant] = []
    /// Paid by each grant on invoices that are not void (each credit line's rounded amount).
    public private(set) var invoiced: [String: Money] = [:]
    /// Paid by each grant for usage charged since, not yet on an invoice.
    public private(set) var drawn: [String: Money] = [:]

    public init(grants: [CreditGrant] = [], invoiced: [String: Money] = [:]) {
        self.grants = grants.sorted(by: CreditGrant.drawsBefore)
        self.invoiced = invoiced
    }

    public mutating func add(_ grant: CreditGrant) {
        grants.append(grant)
        grants.sort(by: CreditGrant.drawsBefore)
    }

    /// What `grant` has left to pay, never below zero (an invoice's rounding can take a fraction of a minor
    /// unit more than its draws).
    public func remaining(_ grant: CreditGrant) -> Money {
        let used = (invoiced[grant.id]?.nanos ?? 0) &+ (drawn[grant.id]?.nanos ?? 0)
        return Money(nanos: max(0, grant.amount.nanos - used))
    }

    /// The credit usage charged at `date` in `currency` could draw: what the grants active then have left.
    public func available(_ currency: String, at date: Date) -> Money {
        var total: Int64 = 0
        for grant in grants where grant.currency == currency && grant.isActive(at: date) {
            total = total.addingReportingOverflow(remaining(grant).nanos).partialValue
        }
        return Money(nanos: total)
    }

    /// Pays what it can of `cost`, charged at `date` in `currency`, from the grants active then, in draw order;
    /// returns what each paid (nothing for a cost of zero or less).
    @discardableResult
    public mutating func draw(_ cost: Money, currency: String, at date: Date) -> [CreditDraw] {
        guard cost > .zero else { return [] }
        var owed = cost.nanos
        var draws: [CreditDraw] = []
        for grant in grants where owed > 0 && grant.currency == currency && grant.isActive(at: date) {
            let paid = min(owed, remaining(grant).nanos)
            guard paid > 0 else { continue }
            owed -= paid
            drawn[grant.id] = Money(nanos: (drawn[grant.id]?.nanos ?? 0) + paid)
            draws.append(CreditDraw(grantId: grant.id, amount: Money(nanos: paid)))
        }
        return draws
    }

    /// Everything drawn so far, per grant: what a period's close turns into credit lines.
    public var draws: [CreditDraw] {
        grants.compactMap { grant in drawn[grant.id].map { CreditDraw(grantId: grant.id, amount: $0) } }
    }
}
