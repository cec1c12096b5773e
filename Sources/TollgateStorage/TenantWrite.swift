import Foundation
import TollgateCore
import TollgateJSON

/// A change to one tenant's records made by an operator or by the runtime, outside the ledger's group
/// commits. `TollgateStore.write(_:answer:)` writes it together with the answer of the call that made it,
/// when that call carried an idempotency key: both in one transaction, or neither, so that a retry after a
/// crash finds either nothing (and does the change) or the answer (and replays it) — never the change without
/// its answer.
public enum TenantWrite: Sendable, Hashable {
    case insertCustomer(Customer)
    /// A customer's name, tax rate and credit blocking, as given; unchanged when the tenant has no such customer.
    case updateCustomer(Customer)
    case insertCreditGrant(CreditGrant)
    case insertDiscount(Discount)
    case insertProduct(Product)
    /// A product's catalog and whether it is closed; unchanged when the tenant has no such product.
    case updateProduct(Product)
    /// Ends a discount at `endsAt`; unchanged when the tenant has no such discount or it ends by then already.
    case endDiscount(tenantId: String, id: String, endsAt: Date)
    case insertTeam(Team)
    case insertPlan(PlanRecord)
    case insertSubscription(SubscriptionRecord)
    case insertPlanSwap(PlanSwapRecord)
    /// Creates or replaces the cap of `cap.target` for `cap.period`.
    case upsertCap(Cap)
    /// Revokes an agent credential and every credential delegated from it, at any depth. Unchanged when none of
    /// them is the tenant's or still unrevoked.
    case revokeCredential(tenantId: String, credentialId: String, at: Date)
    case insertOperatorCredential(OperatorCredential, tokenHash: String)
    /// Ends an operator credential at `at` (now, or ahead for a rotation's overlap); unchanged when it is unknown
    /// to the tenant or ends by then already.
    case revokeOperatorCredential(tenantId: String, credentialId: String, at: Date)
    /// When an agent or operator credential last authenticated; unchanged when the tenant has no such credential.
    case noteCredentialUse(tenantId: String, credentialId: String, at: Date)
    /// Replaces an agent's client secret; the one before keeps working until `previousUntil` (never, when nil).
    /// Unchanged when the tenant has no such agent.
    case rotateClientSecret(tenantId: String, agentId: String, secretHash: String, previousUntil: Date?)
    /// The tenant's session idleness and timeout, in milliseconds.
    case setSessionTimeouts(tenantId: String, idleAfterMs: Int64, sessionTimeoutMs: Int64)
    /// Stores a newly opened session; unchanged when the tenant has one with its id already.
    case openSession(SessionRecord)
    /// A session's final billing record; unchanged when it is not open.
    case closeSession(tenantId: String, id: String, closedAt: Date, outcome: SessionOutcome, totals: SessionTotals)
    /// Moves a held reservation to `state`; unchanged when it is no longer held.
    case finishReservation(tenantId: String, id: String, state: ReservationRecord.State, receiptId: String?)
    /// Nothing but the answer: for a call whose effect is already stored (a session opened by an earlier call).
    case answerOnly
}

/// What `TollgateStore.write(_:answer:)` did.
public enum WriteOutcome: Sendable, Hashable {
    /// The change was written, with the answer when one was given.
    case written
    /// The change had nothing to change (see each `TenantWrite`): nothing was written, not even the answer.
    case unchanged
    /// The answer's key was taken already, by any method: nothing was written; this is what the key recorded.
    case keyTaken(IdempotencyRecord)
}

extension TollgateStore {
    /// `write(_:answer:)` without an answer, for callers that expect no key to be taken.
    @discardableResult
    public func write(_ change: TenantWrite) async throws(StorageError) -> WriteOutcome {
        try await write(change, answer: nil)
    }

    /// The tenant's session idleness and timeout as stored by `.setSessionTimeouts`, in milliseconds.
    public func sessionTimeouts(tenantId: String) async throws(StorageError)
        -> (idleAfterMs: Int64, sessionTimeoutMs: Int64)?
    {
        guard let text = try await setting(SessionTimeoutsSetting.key(tenantId)) else { return nil }
        return SessionTimeoutsSetting.parse(text)
    }
}

/// How `.setSessionTimeouts` is kept: a row of the global settings, `sessionTimeouts:<tenant>` →
/// `{"idleAfterMs":N,"sessionTimeoutMs":M}`.
public enum SessionTimeoutsSetting {
    public static func key(_ tenantId: String) -> String { "sessionTimeouts:\(tenantId)" }

    public static func text(idleAfterMs: Int64, sessionTimeoutMs: Int64) -> String {
        JSONCodec.string(["idleAfterMs": .integer(idleAfterMs), "sessionTimeoutMs": .integer(sessionTimeoutMs)])
    }

    static func parse(_ text: String) -> (idleAfterMs: Int64, sessionTimeoutMs: Int64)? {
        guard let value = try? JSONCodec.parse(text), let idle = value["idleAfterMs"]?.int64Value,
            let timeout = value["sessionTimeoutMs"]?.int64Value
        else { return nil }
        return (idle, timeout)
    }
}
