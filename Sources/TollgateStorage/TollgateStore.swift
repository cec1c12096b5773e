import Foundation
import Synchronization
import TollgateCore

/// The one storage protocol. Every backend (in-memory for unit tests, SQLite, PostgreSQL) passes the same
/// conformance suite (`Tests/TollgateStorageTests`).
///
/// Rules every backend keeps:
/// - every query names its tenant; nothing reads across tenants except the two global look-ups by secret hash
///   (`operatorCredential(tokenHash:)`, `credential(tokenHash:)`, `agent(clientId:)`), which is how a secret
///   finds its tenant;
/// - a method returns only after its writes are committed durably;
/// - `commit(_:)` writes all its entries in one transaction, or none; an entry whose idempotency key is
///   already stored is not written again, and its outcome carries the stored record instead;
/// - `commit(_:)` looks at its entries in order: a duplicate tells its pricing stream it was not recorded
///   (`LedgerEntry.notRecorded()`), and an entry that is then stale (`LedgerEntry.isStale`) is not written.
public protocol TollgateStore: Sendable {
    /// Releases connections and files. No method may be called afterwards.
    func close() async throws

    func setting(_ key: String) async throws(StorageError) -> String?
    func putSetting(_ key: String, _ value: String) async throws(StorageError)

    /// A tenant with its first operator credential, in one transaction.
    func insertTenant(_ tenant: TenantRecord, firstOperator: OperatorCredential, tokenHash: String)
        async throws(StorageError)
    func tenant(id: String) async throws(StorageError) -> TenantRecord?
    func operatorCredential(tokenHash: String) async throws(StorageError) -> OperatorCredential?
    func tenants() async throws(StorageError) -> [TenantRecord]
    /// Everything the tenant actor caches. Nil when there is no such tenant.
    func loadTenant(_ tenantId: String) async throws(StorageError) -> TenantSnapshot?

    func insertAgent(_ agent: Agent, clientSecretHash: String) async throws(StorageError)
    func agent(clientId: String) async throws(StorageError) -> (agent: Agent, secrets: ClientSecrets)?
    func insertCredential(_ credential: Credential, tokenHash: String) async throws(StorageError)
    func credential(tokenHash: String) async throws(StorageError) -> Credential?

    /// Writes one change to a tenant's records and, when given, the answer of the call that made it under its
    /// idempotency key, in one transaction. Keys are one namespace per tenant, shared with the ledger's charges
    /// and holds: when the answer's key is taken already, writes nothing and says what that key recorded.
    func write(_ change: TenantWrite, answer: IdempotencyRecord?) async throws(StorageError) -> WriteOutcome

    /// Writes the entries of one group commit in a single transaction, returning one outcome per entry,
    /// in order. The key check happens inside the transaction, so a retry that races its own first call,
    /// or arrives after a restart, can never be charged twice.
    func commit(_ entries: [LedgerEntry]) async throws(StorageError) -> [CommitOutcome]
    /// `commit(_:)` for the ledger writer's own thread, which may block: a store that can commit on the
    /// calling thread (SQLite) spares the writer two thread hand-offs per group. The default waits for
    /// `commit(_:)`; never call it from a task.
    func commitBlocking(_ entries: [LedgerEntry]) throws(StorageError) -> [CommitOutcome]
    func idempotencyRecord(tenantId: String, key: String) async throws(StorageError) -> IdempotencyRecord?
    /// Committed spend per agent, team, customer and credential of the tenant: lifetime, and since the start of
    /// the scope's customer's windows (`SpendWindows`).
    func spend(tenantId: String, windows: SpendWindows) async throws(StorageError) -> [SpendRow]
    func usage(tenantId: String, filter: UsageFilter, groupBy: [UsageGroup]) async throws(StorageError) -> [UsageRow]
    /// One session with its totals (summed from its charges while open), or nil.
    func session(tenantId: String, id: String) async throws(StorageError) -> SessionRecord?
    /// Sessions of the tenant, newest first: the open ones, the closed ones, or all; at most `limit`.
    func sessions(tenantId: String, _ selection: SessionSelection, limit: Int) async throws(StorageError)
        -> [SessionRecord]
    /// Stores a new hold with its idempotency record (the key, the request's fingerprint and the answer), in
    /// one transaction. Keys are one namespace per tenant, shared with the ledger's charges: when the key is
    /// taken already (by a charge or another hold), writes nothing and returns what that key recorded.
    func insertReservation(_ reservation: ReservationRecord, idempotency: IdempotencyRecord) async throws(StorageError)
        -> IdempotencyRecord?
    func reservation(tenantId: String, id: String) async throws(StorageError) -> ReservationRecord?
    /// The tenant's reservations still held: what is held again after a restart.
    func heldReservations(tenantId: String) async throws(StorageError) -> [ReservationRecord]
    func insertAlert(_ alert: AlertRecord) async throws(StorageError)
    /// Alerts of the tenant, newest first, optionally of some kinds only; at most `limit`.
    func alerts(tenantId: String, kinds: [String]?, limit: Int) async throws(StorageError) -> [AlertRecord]
    /// The charges of one subscription at or after `from`, oldest first: what a pricing state is rebuilt from.
    func charges(tenantId: String, subscriptionId: String, from: Date) async throws(StorageError) -> [RatingRow]
    /// One charge, by its receipt: what `events.get` shows of the billing context an event was rated in.
    func charge(tenantId: String, receiptId: String) async throws(StorageError) -> ChargeRecord?
    /// A customer's charges at or after `from` and before `to`, in the order they were recorded: what
    /// `usage.rerate` rates again.
    func charges(tenantId: String, customerId: String, from: Date, to: Date) async throws(StorageError)
        -> [ChargeRecord]
    /// Charges by receipt, of one tenant only, in the order asked; receipts it does not have are left out.
    func charges(tenantId: String, receiptIds: [String]) async throws(StorageError) -> [ChargeRecord]

    /// Stores a closed period's invoice with the receipts of its lines, what its credit lines applied and, when
    /// asked (`stripeOutbox`), its hand-off to Stripe, in one transaction. If the subscription's period has an
    /// invoice already, that one is returned and nothing is written: closing twice is harmless.
    func insertInvoice(_ invoice: InvoiceRecord, lineReceipts: [InvoiceLineReceipt]) async throws(StorageError)
        -> InvoiceRecord
    func invoice(tenantId: String, id: String) async throws(StorageError) -> InvoiceRecord?
    /// Changes a stored invoice's status and document to `invoice`'s if its status is still `expected`; false (and
    /// nothing written) otherwise, or if there is no such invoice. Its lines' receipts never change. With
    /// `stripeOutbox` (a void), the hand-off is enqueued in the same transaction.
    func updateInvoice(_ invoice: InvoiceRecord, expecting expected: String) async throws(StorageError) -> Bool
    /// The tenant's invoices (of one customer or subscription, if given), the latest period first; at most `limit`.
    func invoices(tenantId: String, customerId: String?, subscriptionId: String?, limit: Int)
        async throws(StorageError) -> [InvoiceRecord]
    /// The Stripe hand-offs of one invoice (its `send`, and its `void` if it was voided).
    func outbox(tenantId: String, invoiceId: String) async throws(StorageError) -> [OutboxRecord]
    /// Hand-offs of every tenant that are pending and due at `date`, the earliest due first; at most `limit`.
    func dueOutbox(at date: Date, limit: Int) async throws(StorageError) -> [OutboxRecord]
    /// Stores a hand-off's state, progress, attempts and next attempt (the one of its tenant, invoice and kind).
    func updateOutbox(_ record: OutboxRecord) async throws(StorageError)
    /// The Stripe customer a customer of the tenant is billed to, once made.
    func stripeCustomer(tenantId: String, customerId: String) async throws(StorageError) -> String?
    /// Keeps the Stripe customer made for a customer; the first one kept stays.
    func putStripeCustomer(tenantId: String, customerId: String, stripeCustomerId: String) async throws(StorageError)

    /// What each credit grant of the tenant (of one customer, if given) has paid on invoices that are not void.
    func creditApplied(tenantId: String, customerId: String?) async throws(StorageError) -> [String: Money]
    /// A page of one invoice line's receipts, in receipt order, after `after`; at most `limit`.
    func invoiceLineReceipts(tenantId: String, invoiceId: String, line: Int, after: String?, limit: Int)
        async throws(StorageError) -> [String]
}

/// What became of one ledger entry in a group commit.
public enum CommitOutcome: Sendable, Hashable {
    /// The charge and its idempotency record were written.
    case recorded
    /// The key was already stored (by an earlier call, or earlier in the same group): nothing was written.
    case duplicate(IdempotencyRecord)
    /// The entry's price counted a call that was not recorded (`PricingStream`): nothing was written, and the
    /// call must be priced again.
    case stale
}

/// Storage failures. `description` is for logs; the wire only ever says "unavailable" or names the conflict.
public enum StorageError: Error, Sendable, CustomStringConvertible {
    /// A uniqueness rule was broken (e.g. a plan version that already exists).
    case duplicate(String)
    /// The backend failed: I/O, connection, constraint the caller should not have hit.
    case backend(String)

    public var description: String {
        switch self {
        case .duplicate(let what): "duplicate \(what)"
        case .backend(let detail): "storage failure: \(detail)"
        }
    }
}

/// The scope columns spend is summed over, shared by the SQL backends.
public enum SpendColumns {
    public static let all: [(scope: CapScope, column: String)] = [
        (.credential, "credential_id"), (.agent, "agent_id"), (.team, "team_id"), (.customer, "customer_id"),
    ]
}

extension TollgateStore {
    public func commitBlocking(_ entries: [LedgerEntry]) throws(StorageError) -> [CommitOutcome] {
        let outcome = BlockingOutcome()
        Task {
            let result: Result<[CommitOutcome], StorageError>
            do throws(StorageError) { result = .success(try await commit(entries)) } catch { result = .failure(error) }
            outcome.result.withLock { $0 = result }
            outcome.done.signal()
        }
        outcome.done.wait()
        return try outcome.result.withLock { $0! }.get()
    }
}

/// Where `commitBlocking`'s default leaves the outcome of the task it waits for.
private final class BlockingOutcome: Sendable {
    let result = Mutex<Result<[CommitOutcome], StorageError>?>(nil)
    let done = DispatchSemaphore(value: 0)
}
