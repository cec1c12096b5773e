import Foundation
import TollgateBilling
import TollgateCore
import TollgateJSON
import TollgatePricing

/// How far one invoice's hand-off to Stripe has come: the Stripe ids each step answered, kept in the outbox after
/// every step, so a retry — after a failure, or a restart — goes on from the step that did not finish, and never
/// sends a finished step again.
public struct StripeProgress: Sendable, Hashable {
    /// The Stripe customer (`cus_…`) the invoice is billed to.
    public var customer: String?
    /// The Stripe invoice (`in_…`) made for it.
    public var invoice: String?
    /// How many of the invoice's items were added.
    public var items = 0
    public var finalized = false
    /// Stripe marked it paid as it finalized it: nothing was due (a period paid by credit). Such an invoice cannot
    /// be voided in Stripe, and needs not be.
    public var paid = false
    public var voided = false

    public init() {}

    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "items": .integer(Int64(items)), "finalized": .bool(finalized), "paid": .bool(paid),
            "voided": .bool(voided),
        ]
        if let customer { fields["customer"] = .string(customer) }
        if let invoice { fields["invoice"] = .string(invoice) }
        return .object(fields)
    }

    /// As the outbox stores it (an empty progress when the text does not read).
    public init(stored text: String) {
        self.init(json: (try? JSONCodec.parse(Array(text.utf8))) ?? [:])
    }

    public init(json: JSONValue) {
        customer = json["customer"]?.stringValue
        invoice = json["invoice"]?.stringValue
        items = Int(json["items"]?.int64Value ?? 0)
        finalized = json["finalized"] == .bool(true)
        paid = json["paid"] == .bool(true)
        voided = json["voided"] == .bool(true)
    }
}

/// One request to Stripe's API: a POST of a form, with the key that makes Stripe answer a retry with the first
/// answer instead of doing it again.
public struct StripeRequest: Sendable, Hashable {
    public enum Step: Sendable, Hashable {
        case customer, invoice, item(Int), finalize, void
    }

    public var step: Step
    public var path: String
    public var form: [StripeField]
    public var idempotencyKey: String
}

/// One `name=value` of a form.
public struct StripeField: Sendable, Hashable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// What Stripe's answer to a step means for the hand-off.
public enum StripeAnswerError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The answer is not what the step asks for (no id, another object): the hand-off stops for an operator.
    case unexpected(String)
    /// Stripe's invoice does not total what ours does.
    case totalMismatch(expected: Int64, stripe: Int64)

    public var description: String {
        switch self {
        case .unexpected(let what): "unexpected answer from Stripe: \(what)"
        case .totalMismatch(let expected, let stripe):
            "Stripe's invoice totals \(stripe) minor units where the invoice totals \(expected)"
        }
    }
}

/// The hand-off of one finalized invoice to Stripe, as Stripe's own API requests, in order: the customer (once per
/// customer; later invoices reuse it), a draft invoice that takes no pending items, one invoice item per line
/// with an amount (usage, adjustments, true-up, credits and discounts as negative items, tax), then finalizing it
/// — whose answer must total what the invoice does. A void invoice that was sent is voided in Stripe too. A state
/// machine with no I/O: `next` says the request to make, `advance` what its answer changes.
public enum StripeHandoff {
    /// Invoice items are added for these lines: every line with an amount.
    public static func items(of invoice: Invoice) -> [InvoiceLine] { invoice.lines.filter { $0.amount != .zero } }

    /// The invoice's amounts in the currency's minor units (what Stripe counts in).
    public static func minorUnits(_ amount: Money, currency: String) -> Int64 {
        amount.nanos / Money.nanosPerUnit(ofFractionDigits: Currency.minorUnitDigits(currency))
    }

    /// The next request of sending `invoice`, or nil when it is sent.
    public static func next(sending invoice: Invoice, progress: StripeProgress) -> StripeRequest? {
        let key = "tollgate-\(invoice.tenantId)-\(invoice.id)"
        let currency = invoice.currency.lowercased()
        guard let customer = progress.customer else {
            return StripeRequest(
                step: .customer, path: "/v1/customers",
                form: [
                    StripeField("name", invoice.billedTo.isEmpty ? invoice.customerId : invoice.billedTo),
                    StripeField("metadata[tollgate_tenant_id]", invoice.tenantId),
                    StripeField("metadata[tollgate_customer_id]", invoice.customerId),
                ],
                idempotencyKey: "tollgate-\(invoice.tenantId)-\(invoice.customerId)-customer")
        }
        guard let stripeInvoice = progress.invoice else {
            return StripeRequest(
                step: .invoice, path: "/v1/invoices",
                form: [
                    StripeField("customer", customer), StripeField("currency", currency),
                    StripeField("collection_method", "send_invoice"), StripeField("days_until_due", "30"),
                    StripeField("auto_advance", "false"), StripeField("pending_invoice_items_behavior", "exclude"),
                    StripeField(
                        "description",
                        (invoice.productName.map { "\($0): " } ?? "")
                            + "usage from \(Timestamp.format(invoice.period.start)) to "
                            + Timestamp.format(invoice.period.end)),
                    StripeField("metadata[tollgate_invoice_id]", invoice.id),
                    StripeField("metadata[tollgate_subscription_id]", invoice.subscriptionId),
                ],
                idempotencyKey: key + "-invoice")
        }
        let items = items(of: invoice)
        if progress.items < items.count {
            let line = items[progress.items]
            return StripeRequest(
                step: .item(progress.items), path: "/v1/invoiceitems",
                form: [
                    StripeField("customer", customer), StripeField("invoice", stripeInvoice),
                    StripeField("currency", currency),
                    StripeField("amount", String(minorUnits(line.amount, currency: invoice.currency))),
                    StripeField("description", itemDescription(line)),
                    StripeField("metadata[tollgate_invoice_id]", invoice.id),
                    StripeField("metadata[tollgate_line_id]", line.id),
                ],
                idempotencyKey: key + "-item-\(line.id)")
        }
        guard progress.finalized else {
            return StripeRequest(
                step: .finalize, path: "/v1/invoices/\(stripeInvoice)/finalize",
                form: [StripeField("auto_advance", "false")], idempotencyKey: key + "-finalize")
        }
        return nil
    }

    /// The next request of voiding `invoice` in Stripe once it was sent, or nil when there is nothing (more) to do:
    /// it is voided, no Stripe invoice was ever made for it, or Stripe marked it paid with nothing due.
    public static func next(voiding invoice: Invoice, progress: StripeProgress) -> StripeRequest? {
        guard let stripeInvoice = progress.invoice, progress.finalized, !progress.paid, !progress.voided else {
            return nil
        }
        return StripeRequest(
            step: .void, path: "/v1/invoices/\(stripeInvoice)/void", form: [],
            idempotencyKey: "tollgate-\(invoice.tenantId)-\(invoice.id)-void")
    }

    /// The progress once Stripe answered `request` with `answer` (a success): the ids it gave, checked.
    public static func advance(
        _ progress: StripeProgress, after request: StripeRequest, answer: JSONValue, invoice: Invoice
    ) throws(StripeAnswerError) -> StripeProgress {
        var progress = progress
        func id(_ object: String, prefix: String) throws(StripeAnswerError) -> String {
            guard answer["object"]?.stringValue == object, let id = answer["id"]?.stringValue, id.hasPrefix(prefix)
            else { throw .unexpected("a \(object) was expected, got \(JSONCodec.string(answer).prefix(200))") }
            return id
        }
        switch request.step {
        case .customer: progress.customer = try id("customer", prefix: "cus_")
        case .invoice: progress.invoice = try id("invoice", prefix: "in_")
        case .item(let index):
            _ = try id("invoiceitem", prefix: "ii_")
            progress.items = index + 1
        case .finalize:
            _ = try id("invoice", prefix: "in_")
            let expected = minorUnits(invoice.total, currency: invoice.currency)
            guard let total = answer["total"]?.int64Value else {
                throw .unexpected("a finalized invoice without total")
            }
            guard total == expected else { throw .totalMismatch(expected: expected, stripe: total) }
            progress.finalized = true
            progress.paid = answer["status"]?.stringValue == "paid"
        case .void:
            _ = try id("invoice", prefix: "in_")
            guard answer["status"]?.stringValue == "void" else { throw .unexpected("the invoice was not voided") }
            progress.voided = true
        }
        return progress
    }

    /// What an item says on Stripe's invoice: the line's description, and its quantity and unit price when it has
    /// them.
    static func itemDescription(_ line: InvoiceLine) -> String {
        var text = line.description
        if line.kind == .usage || line.kind == .included || line.kind == .adjustment {
            text += " — \(line.quantity) \(line.unit)"
            if let unitPrice = line.unitPrice { text += " at \(unitPrice.decimalString)" }
        }
        return text
    }
}
