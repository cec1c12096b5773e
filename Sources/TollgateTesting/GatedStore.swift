import Foundation
import Synchronization
import TollgateCore
import TollgateStorage

/// Wraps a real store and lets a test hold group commits at a gate, or make them fail: how tests observe
/// in-flight requests (`IN_PROGRESS`, out-of-order answers, back-pressure, draining on shutdown) and
/// failed writes (the hold is released, nothing is recorded) deterministically.
public final class GatedStore: TollgateStore, Sendable {
    public let inner: any TollgateStore
    private let state = Mutex(State())

    struct State {
        var commits = Gate()
        var failCommits = false
        var failNextCommits = 0
        var commitsStarted = 0
        var entriesAtCommit = 0
        var ratingRebuilds = 0
        var holds = Gate()
        var holdsAtInsert = 0
        var writes = Gate()
        var writesStarted = 0
        var ratings = Gate()
    }

    public init(wrapping inner: any TollgateStore = InMemoryStore()) { self.inner = inner }

    /// Callers held until the gate opens.
    struct Gate {
        var closed = false
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    /// Holds every commit from now on until `openGate()`.
    public func closeGate() { state.withLock { $0.commits.closed = true } }

    /// Lets held and future commits through.
    public func openGate() { open(\.commits) }

    /// Holds every `meter.authorize` insert from now on until `openHoldGate()`.
    public func closeHoldGate() { state.withLock { $0.holds.closed = true } }

    /// Lets held and future `meter.authorize` inserts through.
    public func openHoldGate() { open(\.holds) }

    /// Holds every tenant write (`write(_:answer:)`: operator writes, sessions opened and closed, holds ended)
    /// from now on until `openWriteGate()`.
    public func closeWriteGate() { state.withLock { $0.writes.closed = true } }

    /// Lets held and future tenant writes through.
    public func openWriteGate() { open(\.writes) }

    /// Holds every rebuild of a pricing state (a subscription's period of charges read back) from now on until
    /// `openRatingGate()`: a call waiting on storage between its arrival and its price.
    public func closeRatingGate() { state.withLock { $0.ratings.closed = true } }

    public func openRatingGate() { open(\.ratings) }

    /// Tenant writes that have reached `write(_:answer:)` (held at the gate or written).
    public var writesStarted: Int { state.withLock { $0.writesStarted } }

    private func open(_ gate: WritableKeyPath<State, Gate>) {
        let waiting = state.withLock { state in
            state[keyPath: gate].closed = false
            defer { state[keyPath: gate].waiting = [] }
            return state[keyPath: gate].waiting
        }
        for waiter in waiting { waiter.resume() }
    }

    /// Waits while `gate` is closed.
    private func pass(_ gate: WritableKeyPath<State, Gate>) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let open = state.withLock { state in
                if !state[keyPath: gate].closed { return true }
                state[keyPath: gate].waiting.append(continuation)
                return false
            }
            if open { continuation.resume() }
        }
    }

    /// Holds that have reached `insertReservation` (held at the gate or written).
    public var holdsAtInsert: Int { state.withLock { $0.holdsAtInsert } }

    /// Makes every commit fail, as a full disk or a lost database would.
    public func failCommits(_ fail: Bool) { state.withLock { $0.failCommits = fail } }

    /// Makes the next `count` commits that pass the gate fail, and the ones after them succeed: one failed
    /// group among others, as a write lost to a brief outage would be.
    public func failNextCommits(_ count: Int = 1) { state.withLock { $0.failNextCommits = count } }

    public var commitsStarted: Int { state.withLock { $0.commitsStarted } }
    /// Ledger entries that have reached `commit` (held at the gate or written).
    public var entriesAtCommit: Int { state.withLock { $0.entriesAtCommit } }
    /// Reads of a subscription's month of charges: how often a tenant rebuilt its pricing state from storage.
    public var ratingRebuilds: Int { state.withLock { $0.ratingRebuilds } }

    public func write(_ change: TenantWrite, answer: IdempotencyRecord?) async throws(StorageError) -> WriteOutcome {
        state.withLock { $0.writesStarted += 1 }
        await pass(\.writes)
        return try await inner.write(change, answer: answer)
    }

    public func commit(_ entries: [LedgerEntry]) async throws(StorageError) -> [CommitOutcome] {
        state.withLock {
            $0.commitsStarted += 1
            $0.entriesAtCommit += entries.count
        }
        await pass(\.commits)
        let fail = state.withLock { state in
            if state.failNextCommits > 0 {
                state.failNextCommits -= 1
                return true
            }
            return state.failCommits
        }
        if fail { throw .backend("injected failure") }
        return try await inner.commit(entries)
    }

    public func idempotencyRecord(tenantId: String, key: String) async throws(StorageError) -> IdempotencyRecord? {
        try await inner.idempotencyRecord(tenantId: tenantId, key: key)
    }

    // Everything else passes straight through.
    public func close() async throws {
        openGate()
        openHoldGate()
        openWriteGate()
        try await inner.close()
    }
    public func setting(_ key: String) async throws(StorageError) -> String? { try await inner.setting(key) }
    public func putSetting(_ key: String, _ value: String) async throws(StorageError) {
        try await inner.putSetting(key, value)
    }
    public func insertTenant(_ tenant: TenantRecord, firstOperator: OperatorCredential, tokenHash: String)
        async throws(StorageError)
    {
        try await inner.insertTenant(tenant, firstOperator: firstOperator, tokenHash: tokenHash)
    }
    public func tenant(id: String) async throws(StorageError) -> TenantRecord? { try await inner.tenant(id: id) }
    public func operatorCredential(tokenHash: String) async throws(StorageError) -> OperatorCredential? {
        try await inner.operatorCredential(tokenHash: tokenHash)
    }
    public func tenants() async throws(StorageError) -> [TenantRecord] { try await inner.tenants() }
    public func loadTenant(_ tenantId: String) async throws(StorageError) -> TenantSnapshot? {
        try await inner.loadTenant(tenantId)
    }
    public func insertAgent(_ agent: Agent, clientSecretHash: String) async throws(StorageError) {
        try await inner.insertAgent(agent, clientSecretHash: clientSecretHash)
    }
    public func agent(clientId: String) async throws(StorageError) -> (agent: Agent, secrets: ClientSecrets)? {
        try await inner.agent(clientId: clientId)
    }
    public func insertCredential(_ credential: Credential, tokenHash: String) async throws(StorageError) {
        try await inner.insertCredential(credential, tokenHash: tokenHash)
    }
    public func credential(tokenHash: String) async throws(StorageError) -> Credential? {
        try await inner.credential(tokenHash: tokenHash)
    }
    public func spend(tenantId: String, windows: SpendWindows) async throws(StorageError) -> [SpendRow] {
        try await inner.spend(tenantId: tenantId, windows: windows)
    }
    public func usage(tenantId: String, filter: UsageFilter, groupBy: [UsageGroup]) async throws(StorageError)
        -> [UsageRow]
    {
        try await inner.usage(tenantId: tenantId, filter: filter, groupBy: groupBy)
    }

    public func session(tenantId: String, id: String) async throws(StorageError) -> SessionRecord? {
        try await inner.session(tenantId: tenantId, id: id)
    }
    public func sessions(tenantId: String, _ selection: SessionSelection, limit: Int) async throws(StorageError)
        -> [SessionRecord]
    {
        try await inner.sessions(tenantId: tenantId, selection, limit: limit)
    }
    public func insertAlert(_ alert: AlertRecord) async throws(StorageError) { try await inner.insertAlert(alert) }
    public func insertReservation(_ reservation: ReservationRecord, idempotency: IdempotencyRecord)
        async throws(StorageError) -> IdempotencyRecord?
    {
        state.withLock { $0.holdsAtInsert += 1 }
        await pass(\.holds)
        return try await inner.insertReservation(reservation, idempotency: idempotency)
    }
    public func reservation(tenantId: String, id: String) async throws(StorageError) -> ReservationRecord? {
        try await inner.reservation(tenantId: tenantId, id: id)
    }
    public func heldReservations(tenantId: String) async throws(StorageError) -> [ReservationRecord] {
        try await inner.heldReservations(tenantId: tenantId)
    }
    public func alerts(tenantId: String, kinds: [String]?, limit: Int) async throws(StorageError) -> [AlertRecord] {
        try await inner.alerts(tenantId: tenantId, kinds: kinds, limit: limit)
    }

    public func charges(tenantId: String, customerId: String, from: Date, to: Date) async throws(StorageError)
        -> [ChargeRecord]
    {
        try await inner.charges(tenantId: tenantId, customerId: customerId, from: from, to: to)
    }

    public func charges(tenantId: String, receiptIds: [String]) async throws(StorageError) -> [ChargeRecord] {
        try await inner.charges(tenantId: tenantId, receiptIds: receiptIds)
    }

    public func insertInvoice(_ invoice: InvoiceRecord, lineReceipts: [InvoiceLineReceipt])
        async throws(StorageError) -> InvoiceRecord
    {
        try await inner.insertInvoice(invoice, lineReceipts: lineReceipts)
    }

    public func updateInvoice(_ invoice: InvoiceRecord, expecting expected: String) async throws(StorageError) -> Bool {
        try await inner.updateInvoice(invoice, expecting: expected)
    }

    public func invoice(tenantId: String, id: String) async throws(StorageError) -> InvoiceRecord? {
        try await inner.invoice(tenantId: tenantId, id: id)
    }

    public func invoices(tenantId: String, customerId: String?, subscriptionId: String?, limit: Int)
        async throws(StorageError) -> [InvoiceRecord]
    {
        try await inner.invoices(
            tenantId: tenantId, customerId: customerId, subscriptionId: subscriptionId, limit: limit)
    }

    public func outbox(tenantId: String, invoiceId: String) async throws(StorageError) -> [OutboxRecord] {
        try await inner.outbox(tenantId: tenantId, invoiceId: invoiceId)
    }

    public func dueOutbox(at date: Date, limit: Int) async throws(StorageError) -> [OutboxRecord] {
        try await inner.dueOutbox(at: date, limit: limit)
    }

    public func updateOutbox(_ record: OutboxRecord) async throws(StorageError) {
        try await inner.updateOutbox(record)
    }

    public func stripeCustomer(tenantId: String, customerId: String) async throws(StorageError) -> String? {
        try await inner.stripeCustomer(tenantId: tenantId, customerId: customerId)
    }

    public func putStripeCustomer(tenantId: String, customerId: String, stripeCustomerId: String)
        async throws(StorageError)
    {
        try await inner.putStripeCustomer(
            tenantId: tenantId, customerId: customerId, stripeCustomerId: stripeCustomerId)
    }

    public func creditApplied(tenantId: String, customerId: String?) async throws(StorageError) -> [String: Money] {
        try await inner.creditApplied(tenantId: tenantId, customerId: customerId)
    }

    public func invoiceLineReceipts(tenantId: String, invoiceId: String, line: Int, after: String?, limit: Int)
        async throws(StorageError) -> [String]
    {
        try await inner.invoiceLineReceipts(
            tenantId: tenantId, invoiceId: invoiceId, line: line, after: after, limit: limit)
    }

    public func charge(tenantId: String, receiptId: String) async throws(StorageError) -> ChargeRecord? {
        try await inner.charge(tenantId: tenantId, receiptId: receiptId)
    }

    public func charges(tenantId: String, subscriptionId: String, from: Date) async throws(StorageError) -> [RatingRow]
    {
        state.withLock { $0.ratingRebuilds += 1 }
        await pass(\.ratings)
        return try await inner.charges(tenantId: tenantId, subscriptionId: subscriptionId, from: from)
    }
}
