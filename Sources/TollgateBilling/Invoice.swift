import Foundation
import TollgateCore
import TollgateJSON

/// One line of an invoice: what was used (a tool's calls at one unit price, a model's tokens, usage from an earlier
/// period, a true-up, tax), how much, at what price, and the events it came from.
public struct InvoiceLine: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// Calls or units of a tool at one price each, or a model's tokens.
        case usage
        /// Calls the plan includes (priced 0: a bundle's or a commitment's allowance, a free tier).
        case included
        /// Usage charged in this period that occurred in one already over (a late event), or a re-rating's
        /// difference: named with the period it belongs to, never added to that period's invoice.
        case adjustment
        /// What a committed minimum adds when the period's usage did not reach it.
        case trueUp = "true_up"
        /// What a credit grant paid towards the period (negative): `creditGrantId` names the grant.
        case credit
        /// What a discount took off (negative): `discountId` names it.
        case discount
        case tax
    }

    /// The line's place on its invoice, from 1: its id is `L<number>`.
    public var number: Int
    public var kind: Kind
    public var description: String
    public var tool: String?
    public var agentId: String?
    public var model: String?
    /// What `quantity` counts: `calls`, `units` (a custom metric) or `tokens`.
    public var unit: String
    public var quantity: Int64
    /// The price of one unit, when every event of the line had the same (always, for calls and units: lines are
    /// split by price); nil for tokens, whose price mixes input, output and reasoning rates.
    public var unitPrice: Money?
    /// The sum of the line's events' prices (or the true-up, or the tax), exact, before rounding. For a credit:
    /// what its grant's draws came to, negative.
    public var exact: Money
    /// `exact` rounded half-even to the currency's minor unit, once, when the invoice is finalized. A credit's is
    /// what the invoice applies (`InvoiceClose.addCredits` says how it can differ from its rounded draws).
    public var amount: Money
    /// For an adjustment: the period its usage belongs to.
    public var adjusts: BillingPeriod?
    /// For a credit: the grant that paid.
    public var creditGrantId: String?
    /// For a discount: which.
    public var discountId: String?
    /// The receipts of the line's events, in the order they were recorded (at close; an invoice read back from
    /// storage leaves them there, for `invoices.trace`).
    public var receipts: [String]
    /// How many events the line sums.
    public var eventCount: Int

    public var id: String { "L\(number)" }
}

/// An invoice: a subscription's period, closed into lines.
public struct Invoice: Sendable, Hashable {
    public enum Status: String, Sendable, Hashable {
        /// The open period's invoice so far, as closing it now would make it.
        case draft
        /// Closed: it never changes again.
        case finalized
        /// Cancelled after finalizing (its lines stay as they were, for the record).
        case void
    }

    public var id: String
    public var tenantId: String
    public var customerId: String
    public var subscriptionId: String
    /// Who bills (the tenant's name) and whom (the customer's), as they were named when the invoice was made.
    public var seller = ""
    public var billedTo = ""
    public var period: BillingPeriod
    public var currency: String
    public var status: Status
    public var lines: [InvoiceLine]
    /// The sum of the rounded amounts of every line but tax.
    public var subtotal: Money
    public var tax: Money
    /// `subtotal + tax`: the sum of every line's rounded amount.
    public var total: Money
    /// The tax rate applied (0.2 is 20 %).
    public var taxRate: Money
    /// The stages that made it, in order (`CloseStage`).
    public var stages: [String]
    public var createdAt: Date
    /// When it was voided, and why (`void` only).
    public var voidedAt: Date?
    public var voidReason: String?
    /// Whether it was closed with a Stripe key configured (then it is handed to Stripe); nil for a draft, and for
    /// invoices closed before the hand-off existed.
    public var stripeConfigured: Bool?
    /// The product the subscription is to, when it is to one: its id and name, as they were when it was made.
    public var productId: String?
    public var productName: String?

    public init(
        id: String, tenantId: String, customerId: String, subscriptionId: String, period: BillingPeriod,
        currency: String, status: Status = .draft, lines: [InvoiceLine] = [], taxRate: Money = .zero, createdAt: Date
    ) {
        self.id = id
        self.tenantId = tenantId
        self.customerId = customerId
        self.subscriptionId = subscriptionId
        self.period = period
        self.currency = currency
        self.status = status
        self.lines = lines
        self.subtotal = .zero
        self.tax = .zero
        self.total = .zero
        self.taxRate = taxRate
        self.stages = []
        self.createdAt = createdAt
    }

    /// The line with id `L<n>`.
    public func line(_ id: String) -> InvoiceLine? { lines.first { $0.id == id } }

    /// What each credit grant paid on this invoice (its credit lines' amounts, positive).
    public var creditApplications: [CreditDraw] {
        lines.compactMap { line in
            line.creditGrantId.map { CreditDraw(grantId: $0, amount: Money(nanos: -line.amount.nanos)) }
        }
    }

    /// This invoice voided at `at` for `reason`: its lines and totals stay as they were, for the record. Only a
    /// finalized invoice can be voided (a draft was never issued; a void one stays as it was voided).
    public func voided(at: Date, reason: String) -> Invoice? {
        guard status == .finalized else { return nil }
        var voided = self
        voided.status = .void
        voided.voidedAt = at
        voided.voidReason = reason
        return voided
    }
}

// MARK: the stored and wire form

extension Invoice {
    /// The invoice as it is stored and answered: every line with its exact and rounded amounts (the receipts are
    /// not here: `invoices.trace` pages through them).
    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "invoiceId": .string(id), "customerId": .string(customerId), "subscriptionId": .string(subscriptionId),
            "periodStart": .string(Timestamp.format(period.start)), "periodEnd": .string(Timestamp.format(period.end)),
            "currency": .string(currency), "status": .string(status.rawValue),
            "lines": .array(lines.map(\.json)), "subtotal": .string(subtotal.decimalString),
            "tax": .string(tax.decimalString), "total": .string(total.decimalString),
            "taxRate": .string(taxRate.decimalString), "stages": .array(stages.map(JSONValue.string)),
            "createdAt": .string(Timestamp.format(createdAt)), "seller": .string(seller),
            "billedTo": .string(billedTo),
        ]
        // A credit line's events are counted on the lines they were charged on.
        fields["events"] = .integer(Int64(lines.filter { $0.kind != .credit }.reduce(0) { $0 + $1.eventCount }))
        if let voidedAt { fields["voidedAt"] = .string(Timestamp.format(voidedAt)) }
        if let voidReason { fields["voidReason"] = .string(voidReason) }
        if let stripeConfigured { fields["stripeConfigured"] = .bool(stripeConfigured) }
        if let productId { fields["productId"] = .string(productId) }
        if let productName { fields["product"] = .string(productName) }
        return .object(fields)
    }

    /// Reads back what `json` wrote (with the receipts left out).
    public init(json: JSONValue, tenantId: String) throws(InvoiceDecodingError) {
        let fields = StoredFields(json: json, path: "")
        func string(_ field: String) throws(InvoiceDecodingError) -> String { try fields.string(field) }
        func date(_ field: String) throws(InvoiceDecodingError) -> Date { try fields.date(field) }
        func money(_ field: String) throws(InvoiceDecodingError) -> Money { try fields.money(field) }
        guard let status = Status(rawValue: try string("status")) else { throw InvoiceDecodingError(field: "status") }
        self.init(
            id: try string("invoiceId"), tenantId: tenantId, customerId: try string("customerId"),
            subscriptionId: try string("subscriptionId"),
            period: BillingPeriod(start: try date("periodStart"), end: try date("periodEnd")),
            currency: try string("currency"), status: status, taxRate: try money("taxRate"),
            createdAt: try date("createdAt"))
        var lines: [InvoiceLine] = []
        for line in json["lines"]?.arrayValue ?? [] { lines.append(try InvoiceLine(json: line)) }
        self.lines = lines
        subtotal = try money("subtotal")
        tax = try money("tax")
        total = try money("total")
        stages = (json["stages"]?.arrayValue ?? []).compactMap(\.stringValue)
        seller = json["seller"]?.stringValue ?? ""
        billedTo = json["billedTo"]?.stringValue ?? ""
        if json["voidedAt"] != nil { voidedAt = try date("voidedAt") }
        voidReason = json["voidReason"]?.stringValue
        if case .bool(let configured)? = json["stripeConfigured"] { stripeConfigured = configured }
        productId = json["productId"]?.stringValue
        productName = json["product"]?.stringValue
    }
}

extension InvoiceLine {
    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "lineId": .string(id), "kind": .string(kind.rawValue), "description": .string(description),
            "unit": .string(unit), "quantity": .integer(quantity), "exact": .string(exact.decimalString),
            "amount": .string(amount.decimalString), "events": .integer(Int64(eventCount)),
        ]
        if let tool { fields["tool"] = .string(tool) }
        if let agentId { fields["agentId"] = .string(agentId) }
        if let model { fields["model"] = .string(model) }
        if let unitPrice { fields["unitPrice"] = .string(unitPrice.decimalString) }
        if let creditGrantId { fields["creditGrantId"] = .string(creditGrantId) }
        if let discountId { fields["discountId"] = .string(discountId) }
        if let adjusts {
            fields["adjustsPeriod"] = [
                "start": .string(Timestamp.format(adjusts.start)), "end": .string(Timestamp.format(adjusts.end)),
            ]
        }
        return .object(fields)
    }

    init(json: JSONValue) throws(InvoiceDecodingError) {
        let fields = StoredFields(json: json, path: "lines.")
        func string(_ field: String) throws(InvoiceDecodingError) -> String { try fields.string(field) }
        func money(_ field: String) throws(InvoiceDecodingError) -> Money { try fields.money(field) }
        let id = try string("lineId")
        guard id.hasPrefix("L"), let number = Int(id.dropFirst()), let kind = Kind(rawValue: try string("kind")),
            let quantity = json["quantity"]?.int64Value, let events = json["events"]?.int64Value
        else { throw InvoiceDecodingError(field: "lines") }
        var adjusts: BillingPeriod?
        if let period = json["adjustsPeriod"] {
            guard let start = period["start"]?.stringValue.flatMap(Timestamp.parse),
                let end = period["end"]?.stringValue.flatMap(Timestamp.parse)
            else { throw InvoiceDecodingError(field: "lines.adjustsPeriod") }
            adjusts = BillingPeriod(start: start, end: end)
        }
        self.init(
            number: number, kind: kind, description: try string("description"), tool: json["tool"]?.stringValue,
            agentId: json["agentId"]?.stringValue, model: json["model"]?.stringValue, unit: try string("unit"),
            quantity: quantity, unitPrice: json["unitPrice"] == nil ? nil : try money("unitPrice"),
            exact: try money("exact"), amount: try money("amount"), adjusts: adjusts,
            creditGrantId: json["creditGrantId"]?.stringValue, discountId: json["discountId"]?.stringValue,
            receipts: [], eventCount: Int(events))
    }
}

/// The fields of a stored invoice (or of one of its lines, `path` "lines."), each read or refused by name.
private struct StoredFields {
    let json: JSONValue
    let path: String

    func string(_ field: String) throws(InvoiceDecodingError) -> String {
        guard let value = json[field]?.stringValue else { throw InvoiceDecodingError(field: path + field) }
        return value
    }

    func date(_ field: String) throws(InvoiceDecodingError) -> Date {
        guard let value = Timestamp.parse(try string(field)) else { throw InvoiceDecodingError(field: path + field) }
        return value
    }

    func money(_ field: String) throws(InvoiceDecodingError) -> Money {
        guard let value = try? Money(decimal: try string(field)) else {
            throw InvoiceDecodingError(field: path + field)
        }
        return value
    }
}

/// A stored invoice that does not read back: storage was changed outside the server.
public struct InvoiceDecodingError: Error, Sendable, Hashable {
    public var field: String
}
