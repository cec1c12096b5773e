import Foundation
import TollgateBilling
import TollgateCore
import TollgateJSON
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
    public var json: JSONValue { invoice.json }

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
                    [
                        "customerId": .string(draft.customerId), "name": .string(draft.billedTo),
                        "subscriptionId": .string(draft.subscriptionId),
                        "periodStart": .string(Timestamp.format(draft.period.start)),
                        "periodEnd": .string(Timestamp.format(draft.period.end)), "currency": .string(draft.currency),
                        "subtotal": .string(draft.subtotal.decimalString), "tax": .string(draft.tax.decimalString),
                        "revenue": .string(draft.total.decimalString),
                        "events": .integer(Int64(draft.lines.reduce(0) { $0 + $1.eventCount })),
                        "lines": .array(draft.lines.map(\.json)),
                    ]
                }),
        ]
    }
}
