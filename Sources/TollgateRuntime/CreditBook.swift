import Foundation
import TollgateCore
import TollgateStorage

/// Each customer's credit as the tenant's actor keeps it live: a wallet per customer with grants, drawn by every
/// charge as it is recorded, in the turn that records it.
///
/// After a period closes or an invoice is voided, a customer's wallet is read again from storage
/// (`CreditLoading`), because what the invoices applied changed. Charges recorded while that read is under way
/// are kept (`beginReload`) and drawn into the wallet read, unless the read had them already.
struct CreditBook: Sendable {
    private(set) var wallets: [String: CreditWallet] = [:]
    /// Charges recorded for a customer whose wallet is being read again, by customer.
    private var collecting: [String: [ChargeRecord]] = [:]

    init(wallets: [String: CreditWallet] = [:]) { self.wallets = wallets }

    func wallet(_ customerId: String) -> CreditWallet? { wallets[customerId] }

    mutating func add(_ grant: CreditGrant) {
        wallets[grant.customerId, default: CreditWallet()].add(grant)
    }

    /// A charge was recorded: it draws its customer's credit.
    mutating func recorded(_ charge: ChargeRecord) {
        guard wallets[charge.customerId] != nil else { return }
        wallets[charge.customerId]!.draw(charge.cost, currency: charge.currency, at: charge.at)
        collecting[charge.customerId]?.append(charge)
    }

    /// Refuses a call of `customerId` costing `price` in `currency` at `date` that its credit cannot pay, counting
    /// `held` (what the customer's calls in flight and holds take already). Only for a customer that blocks at zero
    /// credit; a call that costs nothing always goes through.
    func refusal(
        _ customer: Customer, price: Money, currency: String, held: Money, at date: Date
    ) -> CapRefusal? {
        guard customer.blockAtZeroCredit, price > .zero else { return nil }
        let available = wallets[customer.id]?.available(currency, at: date) ?? .zero
        let (needed, overflow) = held.nanos.addingReportingOverflow(price.nanos)
        guard overflow || needed > available.nanos else { return nil }
        return .credit(
            customerId: customer.id, tenantId: customer.tenantId, available: available, held: held, requested: price)
    }

    /// From here on, charges recorded for `customerId` are kept until `finishReload`.
    mutating func beginReload(_ customerId: String) { collecting[customerId] = collecting[customerId] ?? [] }

    /// Installs `wallet`, read from storage with the charges `read`; the charges recorded since `beginReload` that
    /// the read did not include draw it too.
    mutating func finishReload(_ customerId: String, wallet: CreditWallet, read: Set<String>) {
        var wallet = wallet
        for charge in collecting.removeValue(forKey: customerId) ?? [] where !read.contains(charge.receiptId) {
            wallet.draw(charge.cost, currency: charge.currency, at: charge.at)
        }
        wallets[customerId] = wallet.grants.isEmpty ? nil : wallet
    }

    /// Gives up a reload that failed: the live wallet stays as it was.
    mutating func abandonReload(_ customerId: String) { collecting[customerId] = nil }
}

/// Reads a customer's credit from storage: its grants, what invoices that are not void applied, and the draws of
/// the charges no invoice holds (those of periods not closed), in the order they were recorded.
enum CreditLoading {
    /// The customer's wallet as storage has it, with the draws of uninvoiced charges recorded before `before` (all,
    /// when nil), and the receipts of the charges read. Charges from before its oldest grant draw nothing, so only
    /// those since are read.
    static func wallet(
        _ customerId: String, grants: [CreditGrant], tenantId: String, store: any TollgateStore,
        calendars: [String: BillingCalendar], before: Date?
    ) async throws(StorageError) -> (wallet: CreditWallet, read: Set<String>) {
        let mine = grants.filter { $0.customerId == customerId }
        guard let oldest = mine.map(\.grantedAt).min() else { return (CreditWallet(), []) }
        let applied = try await store.creditApplied(tenantId: tenantId, customerId: customerId)
        var wallet = CreditWallet(grants: mine, invoiced: applied)
        let invoices = try await store.invoices(
            tenantId: tenantId, customerId: customerId, subscriptionId: nil, limit: Int(Int32.max))
        let closed = Set(invoices.map { "\($0.subscriptionId)/\(Timestamp.millis($0.periodStart))" })
        let charges = try await store.charges(
            tenantId: tenantId, customerId: customerId, from: oldest, to: before ?? .distantFuture)
        var read: Set<String> = []
        for charge in charges {
            read.insert(charge.receiptId)
            if let calendar = calendars[charge.subscriptionId] {
                let period = calendar.period(containing: charge.at)
                if closed.contains("\(charge.subscriptionId)/\(Timestamp.millis(period.start))") { continue }
            }
            wallet.draw(charge.cost, currency: charge.currency, at: charge.at)
        }
        return (wallet, read)
    }
}
