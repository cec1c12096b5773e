import Foundation
import TollgateBilling
import TollgateCore
import TollgateJSON
import TollgatePricing
import TollgateStorage

/// `periods.list`: a subscription's periods, the latest first, each open, ended (not closed yet) or closed (with
/// its invoice).
public struct PeriodList: JSONRepresentable {
    public enum State: String, Sendable { case open, ended, closed }

    public var subscriptionId: String
    public var calendar: BillingCalendar
    public var periods: [(period: BillingPeriod, state: State, invoiceId: String?)]

    public var json: JSONValue {
        [
            "subscriptionId": .string(subscriptionId), "period": calendar.json,
            "periods": .array(
                periods.map { entry in
                    var fields: [String: JSONValue] = [
                        "start": .string(Timestamp.format(entry.period.start)),
                        "end": .string(Timestamp.format(entry.period.end)), "state": .string(entry.state.rawValue),
                    ]
                    if let invoiceId = entry.invoiceId { fields["invoiceId"] = .string(invoiceId) }
                    return .object(fields)
                }),
        ]
    }
}

/// An invoice as stored (`Invoice.json`).
public struct InvoiceView: JSONRepresentable {
    public var invoice: Invoice
    /// Its hand-off to Stripe (`send`, then `void` if voided), as the outbox has it now.
    public var handoff: [OutboxRecord] = []
    public var json: JSONValue {
        guard !handoff.isEmpty, var fields = invoice.json.objectValue else { return invoice.json }
        fields["stripe"] = .object(
            Dictionary(
                uniqueKeysWithValues: handoff.map { record in
                    var status: [String: JSONValue] = [
                        "state": .string(record.state.rawValue), "attempts": .integer(Int64(record.attempts)),
                    ]
                    let progress = (try? JSONCodec.parse(Array(record.progress.utf8))) ?? [:]
                    if let stripeInvoice = progress["invoice"] { status["invoiceId"] = stripeInvoice }
                    if let customer = progress["customer"] { status["customerId"] = customer }
                    if let error = record.lastError { status["lastError"] = .string(error) }
                    if record.state == .pending {
                        status["nextAttemptAt"] = .string(Timestamp.format(record.nextAttemptAt))
                    }
                    return (record.kind.rawValue, .object(status))
                }))
        return .object(fields)
    }

    init(_ invoice: Invoice) { self.invoice = invoice }

    init(_ record: InvoiceRecord) throws(TollgateError) {
        do {
            invoice = try Invoice(json: JSONCodec.parse(Array(record.document.utf8)), tenantId: record.tenantId)
        } catch {
            throw .unavailable("invoice \(record.id) cannot be read back")
        }
    }
}

public struct InvoiceList: JSONRepresentable {
    public var invoices: [InvoiceView]
    /// Each invoice without its lines: a list to choose from.
    public var json: JSONValue {
        [
            "invoices": .array(
                invoices.map { view in
                    var fields = view.json.objectValue ?? [:]
                    fields["lines"] = nil
                    return .object(fields)
                })
        ]
    }
}

/// `invoices.trace`: a page of a line's events with their provenance, and where the next page starts.
public struct TracePage: JSONRepresentable {
    public var invoiceId: String
    public var line: InvoiceLine
    public var events: [JSONValue]
    public var next: String?

    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "invoiceId": .string(invoiceId), "line": line.json, "events": .array(events),
        ]
        if let next { fields["next"] = .string(next) }
        return .object(fields)
    }
}

/// `reports.revenue`: per customer, the open period's invoice so far (a draft: what closing it now would make).
public struct RevenueReport: JSONRepresentable {
    public var asOf: Date
    public var drafts: [Invoice]

    public var json: JSONValue {
        [
            "asOf": .string(Timestamp.format(asOf)),
            "customers": .array(
                drafts.map { draft in
                    var fields: [String: JSONValue] = [
                        "customerId": .string(draft.customerId), "name": .string(draft.billedTo),
                        "subscriptionId": .string(draft.subscriptionId),
                        "periodStart": .string(Timestamp.format(draft.period.start)),
                        "periodEnd": .string(Timestamp.format(draft.period.end)), "currency": .string(draft.currency),
                        "subtotal": .string(draft.subtotal.decimalString), "tax": .string(draft.tax.decimalString),
                        "revenue": .string(draft.total.decimalString),
                        "events": draft.json["events"] ?? 0, "lines": .array(draft.lines.map(\.json)),
                    ]
                    if let productId = draft.productId { fields["productId"] = .string(productId) }
                    if let product = draft.productName { fields["product"] = .string(product) }
                    return .object(fields)
                }),
        ]
    }
}

/// `reports.margin`: revenue (what was charged), provider cost (what the calls reported their providers cost) and
/// margin per group over a window of charges — each row flagged `negative` when the providers cost more than was
/// charged — with a total per currency.
public struct MarginReport: JSONRepresentable {
    public var groups: [UsageGroup]
    public var rows: [UsageRow]
    /// Per currency, in currency order.
    public var totals: [(currency: String, revenue: Money, providerCost: Money, calls: Int64)]

    public init(groups: [UsageGroup], rows: [UsageRow]) throws(TollgateError) {
        self.groups = groups
        self.rows = rows
        var sums: [String: (revenue: Money, providerCost: Money, calls: Int64)] = [:]
        for row in rows {
            var sum = sums[row.currency] ?? (.zero, .zero, 0)
            do {
                sum.revenue = try sum.revenue.adding(row.cost)
                sum.providerCost = try sum.providerCost.adding(row.providerCost)
            } catch {
                throw .validation(field: "from", rule: "a window whose totals stay within range")
            }
            sum.calls += row.calls
            sums[row.currency] = sum
        }
        totals = sums.keys.sorted().map { ($0, sums[$0]!.revenue, sums[$0]!.providerCost, sums[$0]!.calls) }
    }

    /// Revenue, provider cost, margin (revenue − provider cost), margin as a percentage of revenue (two decimals,
    /// half-even; absent without revenue) and whether the margin is negative.
    static func figures(revenue: Money, providerCost: Money, calls: Int64) -> [String: JSONValue] {
        let margin = Int128(revenue.nanos) - Int128(providerCost.nanos)
        var fields: [String: JSONValue] = [
            "calls": .integer(calls), "revenue": .string(revenue.decimalString),
            "providerCost": .string(providerCost.decimalString), "negative": .bool(margin < 0),
        ]
        if let exact = Int64(exactly: margin) { fields["margin"] = .string(Money(nanos: exact).decimalString) }
        if revenue.nanos != 0 { fields["marginPercent"] = .string(percent(margin, of: Int128(revenue.nanos))) }
        return fields
    }

    /// `part / whole × 100`, rounded half-even to two decimals, as text.
    static func percent(_ part: Int128, of whole: Int128) -> String {
        let quotient = ExactAmount.divideHalfEven(part * 10_000, by: whole)
        let negative = quotient < 0
        let digits = String(negative ? -quotient : quotient)
        let padded = String(repeating: "0", count: max(0, 3 - digits.count)) + digits
        return (negative ? "-" : "") + padded.dropLast(2) + "." + padded.suffix(2)
    }

    public var json: JSONValue {
        [
            "groupBy": .array(groups.map { .string($0.rawValue) }),
            "rows": .array(
                rows.map { row in
                    var fields = Self.figures(revenue: row.cost, providerCost: row.providerCost, calls: row.calls)
                    fields["currency"] = .string(row.currency)
                    for (group, key) in zip(groups, row.keys) { fields[group.rawValue] = .string(key) }
                    return .object(fields)
                }),
            "totals": .array(
                totals.map { total in
                    var fields = Self.figures(
                        revenue: total.revenue, providerCost: total.providerCost, calls: total.calls)
                    fields["currency"] = .string(total.currency)
                    return .object(fields)
                }),
        ]
    }
}
