import TollgateCore
import TollgateJSON

/// The methods that write, as the idempotency rule names them: a key used by one of them and then by
/// another is `IDEMPOTENCY_MISMATCH` (field `method`). The raw values are the wire's method names, which are
/// stored with each key.
public enum WriteMethod: String, Sendable, CaseIterable {
    case meterVerify = "meter.verify"
    case meterAuthorize = "meter.authorize"
    case meterCommit = "meter.commit"
    case meterRelease = "meter.release"
    case sessionOpen = "session.open"
    case sessionClose = "session.close"
    case customersCreate = "customers.create"
    case customersUpdate = "customers.update"
    case creditsGrant = "credits.grant"
    case discountsCreate = "discounts.create"
    case discountsEnd = "discounts.end"
    case productsCreate = "products.create"
    case productsUpdate = "products.update"
    case teamsCreate = "teams.create"
    case credentialsRevoke = "credentials.revoke"
    case operatorsRevoke = "operators.revoke"
    case plansPut = "plans.put"
    case subscriptionsCreate = "subscriptions.create"
    case subscriptionsSwap = "subscriptions.swap"
    case capsSet = "caps.set"
    case sessionsConfigure = "sessions.configure"
    /// An event of a batch: its `eventId` is its key.
    case eventsIngest = "events.ingest"
    /// An adjustment `usage.rerate --apply` recorded, under `rerate:<receipt>:<plan>@<version>`.
    case usageRerate = "usage.rerate"
}

/// A writing call as the idempotency rule sees it: its key, its method, and what a retry must repeat (its
/// params and who sent them, `Fingerprint`).
public struct KeyedCall: Sendable, Hashable {
    public let key: String
    public let method: WriteMethod
    public let fingerprint: String

    /// What an operator's calls are fingerprinted with in place of an agent id.
    public static let operatorPrincipal = "operator"

    /// `params` exactly as received (they are compared canonically), sent by `principal` (an agent id, or
    /// `operatorPrincipal`).
    public init(key: String, method: WriteMethod, params: JSONValue, principal: String) {
        self.key = key
        self.method = method
        self.fingerprint = Fingerprint.make(params: params, principal: principal)
    }

    /// A call whose fingerprint is already made (an event's, by the ingest gates).
    init(key: String, method: WriteMethod, fingerprint: String) {
        self.key = key
        self.method = method
        self.fingerprint = fingerprint
    }
}
