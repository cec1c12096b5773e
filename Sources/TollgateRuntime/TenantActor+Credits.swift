import Foundation
import TollgateCore
import TollgateJSON
import TollgateStorage

/// What `credits.grant` is asked.
public struct CreditGrantRequest: Sendable {
    public var customerId: String
    public var amount: Money
    /// Nil: the currency of the customer's subscription in force.
    public var currency: String?
    public var kind: CreditGrant.Kind
    public var priority: Int
    public var expiresAt: Date?
    public var description: String

    public init(
        customerId: String, amount: Money, currency: String?, kind: CreditGrant.Kind, priority: Int,
        expiresAt: Date?, description: String
    ) {
        self.customerId = customerId
        self.amount = amount
        self.currency = currency
        self.kind = kind
        self.priority = priority
        self.expiresAt = expiresAt
        self.description = description
    }
}

/// Credit: `credits.grant`, `credits.balance`, and a customer that blocks at zero credit (`customers.update`).
/// Usage draws credit as it is recorded (`CreditBook`); closing a period applies it (`InvoiceClose.addCredits`).
extension TenantActor {
    public func grantCredit(_ request: CreditGrantRequest, call: KeyedCall?) async throws(TollgateError)
        -> Answer<CreditGranted>
    {
        try await keyed(call) { () async throws(TollgateError) in
            _ = try directory.customer(request.customerId)
            let at = now
            guard request.amount > .zero else {
                throw .validation(field: "amount", rule: "an amount above zero")
            }
            if let expiresAt = request.expiresAt, expiresAt <= at {
                throw .validation(field: "expiresAt", rule: "a time after now (\(Timestamp.format(at)))")
            }
            let currency = try currency(request.currency, of: request.customerId, at: at)
            let grant = CreditGrant(
                id: Identifiers.make(.creditGrant, at: at), tenantId: tenantId, customerId: request.customerId,
                currency: currency, amount: request.amount, kind: request.kind, priority: request.priority,
                grantedAt: at, expiresAt: request.expiresAt, description: request.description)
            let answer = Answer(CreditGranted(grant: grant))
            let written = try await write(
                .insertCreditGrant(grant), answering: answer, for: call, "granting credit")
            if written == .written { credits.add(grant) }
            return written.answer(answer)
        }
    }

    /// `credits.balance`: each grant with what invoices applied, what usage since has drawn and what is left; and
    /// per currency what calls can draw now.
    public func creditBalance(customerId: String) throws(TollgateError) -> CreditBalance {
        let customer = try directory.customer(customerId)
        let at = now
        let wallet = credits.wallet(customerId) ?? CreditWallet()
        let held = capLedger.held[ScopeRef(.customer, customerId)] ?? .zero
        return CreditBalance(customer: customer, wallet: wallet, held: held, asOf: at)
    }

    /// `customers.update`: a customer's name, tax rate (for periods closed from now on) and whether its calls are
    /// refused once its credit cannot pay for them.
    public func updateCustomer(
        _ customerId: String, name: String?, taxRate: Money?, blockAtZeroCredit: Bool?, call: KeyedCall?
    ) async throws(TollgateError) -> Answer<CustomerCreated> {
        try await keyed(call) { () async throws(TollgateError) in
            var customer = try directory.customer(customerId)
            if let taxRate {
                guard taxRate <= Money(nanos: 1_000_000_000) else {
                    throw .validation(field: "taxRate", rule: "a rate from 0 to 1 (0.2 is 20 %)")
                }
                customer.taxRate = taxRate
            }
            if let name { customer.name = name }
            if let blockAtZeroCredit { customer.blockAtZeroCredit = blockAtZeroCredit }
            let answer = Answer(CustomerCreated(customer: customer))
            let written = try await write(
                .updateCustomer(customer), answering: answer, for: call, "updating a customer")
            // Changed meanwhile by another update: this one was written over it, so memory follows the write.
            if written == .written { directory.update(customer) }
            return written.answer(answer)
        }
    }

    /// A customer's wallet read again from storage, after what its invoices applied changed (a close or a void).
    /// A failed read leaves the live wallet as it was (and logs): the next start reads it afresh.
    func reloadCredit(_ customerId: String) async {
        guard credits.wallet(customerId) != nil else { return }
        credits.beginReload(customerId)
        do {
            let (wallet, read) = try await CreditLoading.wallet(
                customerId, grants: credits.wallet(customerId)?.grants ?? [], tenantId: tenantId,
                store: services.store, calendars: directory.subscriptionCalendars, before: nil)
            credits.finishReload(customerId, wallet: wallet, read: read)
        } catch {
            credits.abandonReload(customerId)
            services.logger.error(
                "a customer's credit could not be read again",
                metadata: ["tenant": "\(tenantId)", "customer": "\(customerId)", "error": "\(error)"])
        }
    }

    /// The customer's credit as a period starting at `start` begins: grants, what invoices applied, and what
    /// usage before `start` drew that no invoice holds.
    func credit(of customerId: String, before start: Date) async throws(TollgateError) -> CreditWallet {
        guard let grants = credits.wallet(customerId)?.grants else { return CreditWallet() }
        return try await storage("reading a customer's credit") { () async throws(StorageError) in
            try await CreditLoading.wallet(
                customerId, grants: grants, tenantId: tenantId, store: services.store,
                calendars: directory.subscriptionCalendars, before: start
            ).wallet
        }
    }
}

public struct CreditGranted: JSONRepresentable, Equatable {
    public var grant: CreditGrant
    public var json: JSONValue { CreditBalance.json(grant) }
}

/// A customer's credit now.
public struct CreditBalance: JSONRepresentable, Equatable {
    public var customer: Customer
    public var wallet: CreditWallet
    /// What the customer's calls in flight and holds take (in its plan's currency), not drawn yet.
    public var held: Money
    public var asOf: Date

    public var json: JSONValue {
        let currencies = Array(Set(wallet.grants.map(\.currency))).sorted()
        let balances: [JSONValue] = currencies.map { currency in
            let available = wallet.available(currency, at: asOf)
            return ["currency": .string(currency), "available": .string(available.decimalString)]
        }
        let grants: [JSONValue] = wallet.grants.map { grant in
            var fields = Self.json(grant).objectValue ?? [:]
            let remaining = wallet.remaining(grant)
            fields["invoiced"] = .string((wallet.invoiced[grant.id] ?? .zero).decimalString)
            fields["drawn"] = .string((wallet.drawn[grant.id] ?? .zero).decimalString)
            fields["remaining"] = .string(remaining.decimalString)
            let expired = grant.expiresAt.map { $0 <= asOf } ?? false
            fields["state"] = .string(expired ? "expired" : remaining == .zero ? "used" : "active")
            return .object(fields)
        }
        return [
            "customerId": .string(customer.id), "asOf": .string(Timestamp.format(asOf)),
            "blockAtZeroCredit": .bool(customer.blockAtZeroCredit), "held": .string(held.decimalString),
            "balances": .array(balances), "grants": .array(grants),
        ]
    }

    static func json(_ grant: CreditGrant) -> JSONValue {
        var fields: [String: JSONValue] = [
            "grantId": .string(grant.id), "customerId": .string(grant.customerId), "currency": .string(grant.currency),
            "amount": .string(grant.amount.decimalString), "kind": .string(grant.kind.rawValue),
            "priority": .integer(Int64(grant.priority)), "grantedAt": .string(Timestamp.format(grant.grantedAt)),
            "description": .string(grant.description),
        ]
        if let expiresAt = grant.expiresAt { fields["expiresAt"] = .string(Timestamp.format(expiresAt)) }
        return .object(fields)
    }
}
