import Foundation

/// The cap arithmetic of one tenant, as a pure value: committed spend per scope, plus amounts reserved by
/// calls that have been admitted but whose records are not yet durable.
///
/// Admission is `reserve` (check every cap on the path, then hold the amount on every scope of the path),
/// then exactly one of `commit` (the record is durable: move the hold into spend) or `release` (the write
/// failed: drop the hold). Because holds count against caps, racing callers can never together cross one.
public struct CapLedger: Sendable {
    public private(set) var spend: [ScopeRef: ScopeSpend] = [:]
    public private(set) var held: [ScopeRef: Money] = [:]
    /// Caps by the scope they limit; a scope may carry one cap per period.
    public private(set) var caps: [ScopeRef: [CapPeriod: Cap]] = [:]
    /// Delegated credentials, child → parent (`credentials.delegate`). Whatever a path does on a child credential
    /// it does on each credential above it too (`expanded`): a parent's spend limit bounds what it and all its
    /// children spend together, and every check, hold and commit sees them in the same turn.
    public private(set) var parents: [String: String] = [:]

    public mutating func delegate(_ child: String, from parent: String) { parents[child] = parent }

    /// `path` with, after each credential, the credentials it was delegated from, nearest first.
    public func expanded(_ path: [ScopeRef]) -> [ScopeRef] {
        guard !parents.isEmpty, path.contains(where: { $0.scope == .credential && parents[$0.id] != nil }) else {
            return path
        }
        return path.flatMap { target in
            target.scope == .credential ? [target] + ancestors(of: target.id) : [target]
        }
    }

    /// The credential scopes `child` was delegated from, nearest first.
    func ancestors(of child: String) -> [ScopeRef] {
        var result: [ScopeRef] = []
        var id = child
        while let parent = parents[id] {
            result.append(ScopeRef(.credential, parent))
            id = parent
        }
        return result
    }

    /// Adds a delegated credential's lifetime spend, loaded from storage, to the credentials above it (their own
    /// rows count only their own charges). Credential scopes carry lifetime caps only.
    public mutating func loadDelegated(_ lifetime: Money, of child: String) {
        for target in ancestors(of: child) {
            spend[target, default: ScopeSpend()].lifetime = Money(
                nanos: (spend[target]?.lifetime.nanos ?? 0) &+ lifetime.nanos)
        }
    }

    public init() {}

    public mutating func setCap(_ cap: Cap) {
        caps[cap.target, default: [:]][cap.period] = cap
    }

    public func caps(on target: ScopeRef) -> [Cap] {
        (caps[target] ?? [:]).values.sorted { $0.period.rawValue < $1.period.rawValue }
    }

    /// Forgets a closed session's spend, holds and caps: nothing can be charged to it any more.
    public mutating func forget(_ target: ScopeRef) {
        spend[target] = nil
        held[target] = nil
        caps[target] = nil
    }

    /// Seeds committed spend loaded from storage (at start-up).
    public mutating func load(_ target: ScopeRef, _ loaded: ScopeSpend) { spend[target] = loaded }

    /// What `cap` counts against on a path: its own scope, except that a cap with the `session` period
    /// counts the spend of the path's session (every session under the capped agent, team or customer gets
    /// the limit). Nil when the cap does not apply (a session cap on a path without a session).
    func counted(_ cap: Cap, on path: [ScopeRef]) -> ScopeRef? {
        guard cap.period == .session else { return cap.target }
        return path.first { $0.scope == .session }
    }

    /// Spend plus holds that `cap` counts on `path` within `windows`.
    func usedNanos(_ cap: Cap, on path: [ScopeRef], during windows: CapWindows) -> Int64? {
        guard let target = counted(cap, on: path) else { return nil }
        let spent = spend[target]?.spent(in: cap.period == .session ? .lifetime : cap.period, during: windows) ?? .zero
        return spent.nanos &+ (held[target]?.nanos ?? 0)
    }

    /// What `cap` has counted on `path` within `windows`, holds included; nil when the cap does not apply to the
    /// path.
    public func used(_ cap: Cap, on path: [ScopeRef], during windows: CapWindows) -> Money? {
        usedNanos(cap, on: path, during: windows).map(Money.init(nanos:))
    }

    /// What remains under `cap` within `windows` for a call on `path`, counting holds; never below zero.
    public func remaining(_ cap: Cap, on path: [ScopeRef], during windows: CapWindows) -> Money {
        Money(nanos: max(0, cap.limit.nanos - (usedNanos(cap, on: path, during: windows) ?? 0)))
    }

    /// Every cap that applies to a call on `path`, tightest scope first.
    public func caps(on path: [ScopeRef]) -> [Cap] { expanded(path).flatMap { caps(on: $0) } }

    /// Checks every cap on `path` and, if none would be crossed, holds `amount` on each scope.
    /// The first cap that would be crossed, walking tightest scope first, is returned as the refusal.
    ///
    /// A credit (a negative amount, from a plan that allows credits) can cross no cap and holds nothing: it
    /// frees room only once it is committed, so no call can spend against a credit that is then not recorded.
    /// `windows` are those of the moment of the call, in the calendar of the path's customer.
    public mutating func reserve(_ amount: Money, on path: [ScopeRef], during windows: CapWindows) -> CapRefusal? {
        if amount < .zero { return nil }
        let path = expanded(path)
        for target in path {
            for cap in caps(on: target) {
                guard let used = usedNanos(cap, on: path, during: windows) else { continue }
                let (after, overflow) = used.addingReportingOverflow(amount.nanos)
                if overflow || after > cap.limit.nanos {
                    return CapRefusal(
                        cap: cap, spent: Money(nanos: used), requested: amount,
                        resetsAt: cap.period.window(in: windows)?.end)
                }
            }
        }
        for target in path { held[target] = Money(nanos: (held[target]?.nanos ?? 0) + amount.nanos) }
        return nil
    }

    /// Holds `amount` on every scope of `path` without checking caps: a hold that was already admitted, given
    /// back after a failed commit or loaded again after a restart.
    public mutating func hold(_ amount: Money, on path: [ScopeRef]) {
        guard amount > .zero else { return }
        for target in expanded(path) { held[target] = Money(nanos: (held[target]?.nanos ?? 0) + amount.nanos) }
    }

    /// The held amount's record is durable: it becomes spend of `windows`, those of the moment it was charged.
    public mutating func commit(_ amount: Money, on path: [ScopeRef], during windows: CapWindows) {
        for target in expanded(path) {
            if amount > .zero { dropHold(amount, on: target) }
            // Overflow here would need more than 9.2 billion units spent on one scope; the cap check above
            // refuses long before that for any capped scope, so an uncapped scope saturates instead.
            do { try spend[target, default: ScopeSpend()].add(amount, during: windows) } catch {
                spend[target]?.lifetime = Money(nanos: .max)
            }
        }
    }

    /// The held amount's record was not written: give the hold back.
    public mutating func release(_ amount: Money, on path: [ScopeRef]) {
        guard amount > .zero else { return }
        for target in expanded(path) { dropHold(amount, on: target) }
    }

    private mutating func dropHold(_ amount: Money, on target: ScopeRef) {
        let left = (held[target]?.nanos ?? 0) - amount.nanos
        precondition(left >= 0, "released more than was held on \(target)")
        held[target] = left == 0 ? nil : Money(nanos: left)
    }
}

/// Why a reservation was refused: the cap it would have crossed and by how much.
public struct CapRefusal: Sendable, Hashable {
    public var cap: Cap
    /// Spent in the cap's period, counting holds of calls still being recorded.
    public var spent: Money
    public var requested: Money
    /// When the cap's period ends and spend starts again from zero; nil for lifetime caps.
    public var resetsAt: Date?
    /// The refusal of a customer that blocks at zero credit: `cap` is its credit (its limit what the customer's
    /// credit has left, on the customer scope), `spent` what calls in flight and holds of the customer take of it.
    public var credit = false

    public init(cap: Cap, spent: Money, requested: Money, resetsAt: Date?, credit: Bool = false) {
        self.cap = cap
        self.spent = spent
        self.requested = requested
        self.resetsAt = resetsAt
        self.credit = credit
    }

    /// The refusal of a call costing `requested` by customer `customerId`, whose credit has `available` left
    /// and whose calls in flight and holds take `held` of it.
    public static func credit(
        customerId: String, tenantId: String, available: Money, held: Money, requested: Money
    ) -> CapRefusal {
        CapRefusal(
            cap: Cap(
                id: "credit_\(customerId)", tenantId: tenantId, target: ScopeRef(.customer, customerId),
                limit: available, period: .lifetime, warnAtPercent: nil),
            spent: held, requested: requested, resetsAt: nil, credit: true)
    }
}
