import Foundation

/// The tenant's hierarchy: customer → team → agent → credential. These are plain values; the tenant actor
/// caches them and storage persists them.
public struct Customer: Sendable, Hashable {
    public var id: String
    public var tenantId: String
    public var name: String
    public var externalId: String?
    /// The IANA time zone the customer's billing periods follow (`BillingCalendar`): they start at its midnight.
    public var timeZone: String
    /// The tax rate its invoices add (0.2 is 20 %), on their rounded subtotal.
    public var taxRate: Money
    /// Whether its calls are refused once its credit cannot pay for them (`CreditWallet`): a prepaid customer.
    public var blockAtZeroCredit: Bool
    public init(
        id: String, tenantId: String, name: String, externalId: String?, timeZone: String = "UTC",
        taxRate: Money = .zero, blockAtZeroCredit: Bool = false
    ) {
        self.id = id
        self.tenantId = tenantId
        self.name = name
        self.externalId = externalId
        self.timeZone = timeZone
        self.taxRate = taxRate
        self.blockAtZeroCredit = blockAtZeroCredit
    }
}

public struct Team: Sendable, Hashable {
    public var id: String
    public var tenantId: String
    public var customerId: String
    public var name: String
    public init(id: String, tenantId: String, customerId: String, name: String) {
        self.id = id
        self.tenantId = tenantId
        self.customerId = customerId
        self.name = name
    }
}

public struct Agent: Sendable, Hashable {
    public var id: String
    public var tenantId: String
    public var teamId: String
    public var name: String
    public var agentType: String?
    /// The OAuth-style client id used by `auth.token`; its secret is stored only as a hash.
    public var clientId: String
    public init(id: String, tenantId: String, teamId: String, name: String, agentType: String?, clientId: String) {
        self.id = id
        self.tenantId = tenantId
        self.teamId = teamId
        self.name = name
        self.agentType = agentType
        self.clientId = clientId
    }
}

/// An agent credential (`AGT-…` token). Only the token's hash is ever stored.
public struct Credential: Sendable, Hashable {
    public var id: String
    public var tenantId: String
    public var agentId: String
    public var scopes: [String]
    public var expiresAt: Date
    /// When it stops working: at once when revoked, and when a parent credential is revoked.
    public var revokedAt: Date?
    /// An optional lifetime spend limit on this credential, in the plan's currency.
    public var spendLimit: Money?
    /// The token's first characters (`Secrets.shownPrefix`), to tell credentials apart in a list; nil for
    /// credentials issued before it was kept.
    public var tokenPrefix: String?
    /// When it last authenticated a connection (`auth.hello`), to the minute.
    public var lastUsedAt: Date?
    /// The credential it was delegated from (`credentials.delegate`): its spend counts against that one's limit
    /// too, and it ends when that one is revoked.
    public var parentId: String?
    /// What the delegating agent called the sub-agent it was made for.
    public var label: String?
    public init(
        id: String, tenantId: String, agentId: String, scopes: [String], expiresAt: Date,
        revokedAt: Date?, spendLimit: Money?, tokenPrefix: String? = nil, lastUsedAt: Date? = nil,
        parentId: String? = nil, label: String? = nil
    ) {
        self.parentId = parentId
        self.label = label
        self.id = id
        self.tenantId = tenantId
        self.agentId = agentId
        self.scopes = scopes
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
        self.spendLimit = spendLimit
        self.tokenPrefix = tokenPrefix
        self.lastUsedAt = lastUsedAt
    }

    /// A credential is usable until it expires or is revoked, whichever comes first.
    public func isUsable(at now: Date) -> Bool { (revokedAt.map { now < $0 } ?? true) && now < expiresAt }
}

/// A tenant operator's credential (`TGO-…` token): a name to tell it by, its scopes (`OperatorScope`), and an
/// optional expiry. `tenants.create` returns the first; `operators.issue` makes more. Only the hash is stored.
public struct OperatorCredential: Sendable, Hashable {
    public var id: String
    public var tenantId: String
    public var name: String
    public var scopes: [String]
    public var createdAt: Date
    public var expiresAt: Date?
    /// When it stops working: now when revoked, a moment ahead when rotated with an overlap.
    public var revokedAt: Date?
    public var tokenPrefix: String?
    /// When it last authenticated a connection (`auth.hello`), to the minute.
    public var lastUsedAt: Date?
    public init(
        id: String, tenantId: String, name: String, scopes: [String], createdAt: Date, expiresAt: Date?,
        revokedAt: Date?, tokenPrefix: String?, lastUsedAt: Date? = nil
    ) {
        self.id = id
        self.tenantId = tenantId
        self.name = name
        self.scopes = scopes
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
        self.tokenPrefix = tokenPrefix
        self.lastUsedAt = lastUsedAt
    }

    public func isUsable(at now: Date) -> Bool {
        (revokedAt.map { now < $0 } ?? true) && (expiresAt.map { now < $0 } ?? true)
    }

    /// Whether it may call a method that `needs` any of these scopes (`operator` may call every method).
    public func allows(anyOf needs: [String]) -> Bool {
        scopes.contains(OperatorScope.all) || needs.contains(where: scopes.contains)
    }
}

/// The path of a charge up the hierarchy: what every cap check walks.
public struct ChargePath: Sendable, Hashable {
    public var customerId: String
    public var teamId: String
    public var agentId: String
    public var sessionId: String
    public var credentialId: String
    public init(customerId: String, teamId: String, agentId: String, sessionId: String, credentialId: String) {
        self.customerId = customerId
        self.teamId = teamId
        self.agentId = agentId
        self.sessionId = sessionId
        self.credentialId = credentialId
    }

    /// The scopes spend is counted on, tightest first (session → credential → agent → team → customer).
    public var scopes: [ScopeRef] {
        [
            ScopeRef(.session, sessionId), ScopeRef(.credential, credentialId), ScopeRef(.agent, agentId),
            ScopeRef(.team, teamId), ScopeRef(.customer, customerId),
        ]
    }
}
