import Foundation
import TollgateCore
import TollgateJSON
import TollgatePricing

/// An invoice as people and spreadsheets read it: plain text for a terminal, CSV (RFC 4180) with a row per line,
/// and a printable HTML page with no outside resources (fonts, scripts, images), every caller-given text escaped.
public enum InvoiceRendering {
    // MARK: text

    public static func text(_ invoice: Invoice) -> String {
        var text = "Invoice \(invoice.id) (\(invoice.status.rawValue))\n"
        text += "Customer \(invoice.customerId), subscription \(invoice.subscriptionId)\n"
        if let product = invoice.productName { text += "Product \(product)\n" }
        text += "Period \(Timestamp.format(invoice.period.start)) to \(Timestamp.format(invoice.period.end))\n"
        if let voided = voidNotice(invoice) { text += voided + "\n" }
        text += "\n"
        let rows = invoice.lines.map { line in
            [
                line.id, line.description, quantity(line), unitPrice(line, rate: invoice.taxRate),
                money(line.amount, invoice.currency),
            ]
        }
        let header = ["line", "description", "quantity", "unit price", "amount (\(invoice.currency))"]
        let widths = header.indices.map { column in
            ([header] + rows).map { $0[column].count }.max() ?? 0
        }
        func row(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                // Figures right-aligned, words left.
                index >= 2
                    ? String(repeating: " ", count: widths[index] - cell.count) + cell
                    : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ") + "\n"
        }
        text += row(header)
        for cells in rows { text += row(cells) }
        text += "\n"
        for (label, amount) in [("Subtotal", invoice.subtotal), ("Tax", invoice.tax), ("Total", invoice.total)] {
            text += "\(label): \(money(amount, invoice.currency)) \(invoice.currency)\n"
        }
        return text
    }

    /// An amount with exactly the currency's minor digits (`2.50`, `300` for yen).
    public static func money(_ amount: Money, _ currency: String) -> String {
        let digits = Currency.minorUnitDigits(currency)
        let text = amount.decimalString
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        let fraction = parts.count > 1 ? String(parts[1]) : ""
        guard digits > 0 else { return String(parts[0]) }
        return String(parts[0]) + "."
            + fraction.padding(toLength: max(digits, fraction.count), withPad: "0", startingAt: 0)
    }

    /// What a line's quantity column says: `1 call`, `3 calls`, `1,500 tokens` — nothing for tax, whose rate is
    /// in its unit price column, nor for a credit or a discount, which its description names.
    static func quantity(_ line: InvoiceLine) -> String {
        guard line.kind != .tax, line.kind != .credit, line.kind != .discount else { return "" }
        let singular = line.unit.hasSuffix("s") ? String(line.unit.dropLast()) : line.unit
        return "\(line.quantity) \(line.quantity == 1 ? singular : line.unit)"
    }

    /// A line's unit price column: the price of one unit, or a tax line's rate.
    static func unitPrice(_ line: InvoiceLine, rate: Money) -> String {
        line.kind == .tax ? InvoiceClose.percent(rate) + " %" : line.unitPrice?.decimalString ?? ""
    }

    static func events(_ count: Int) -> String { count == 1 ? "1 event" : "\(count) events" }

    // MARK: CSV

    public static let csvColumns = [
        "invoice_id", "line_id", "kind", "description", "tool", "agent_id", "model", "unit", "quantity", "unit_price",
        "exact", "amount", "currency", "events", "adjusts_period_start", "period_start", "period_end",
        "invoice_status",
    ]

    public static func csv(_ invoice: Invoice) -> String {
        var text = csvRow(csvColumns)
        for line in invoice.lines {
            text += csvRow([
                invoice.id, line.id, line.kind.rawValue, line.description, line.tool ?? "", line.agentId ?? "",
                line.model ?? "", line.unit, String(line.quantity), line.unitPrice?.decimalString ?? "",
                line.exact.decimalString, line.amount.decimalString, invoice.currency, String(line.eventCount),
                line.adjusts.map { Timestamp.format($0.start) } ?? "", Timestamp.format(invoice.period.start),
                Timestamp.format(invoice.period.end), invoice.status.rawValue,
            ])
        }
        return text
    }

    /// "VOID …" with when and why, for a voided invoice; nil otherwise.
    static func voidNotice(_ invoice: Invoice) -> String? {
        guard invoice.status == .void else { return nil }
        var notice = "VOID"
        if let at = invoice.voidedAt { notice += " since \(Timestamp.format(at))" }
        if let reason = invoice.voidReason, !reason.isEmpty { notice += ": \(reason)" }
        return notice + " (nothing is owed on this invoice)"
    }

    /// One CSV record: a field with a comma, quote or line break is quoted, its quotes doubled; CRLF ends it.
    public static func csvRow(_ fields: [String]) -> String {
        fields.map { field in
            field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                ? "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : field
        }.joined(separator: ",") + "\r\n"
    }

    // MARK: HTML

    /// A printable invoice: who bills whom for which period, the lines, the totals; everything escaped.
    public static func html(_ invoice: Invoice) -> String {
        let currency = escape(invoice.currency)
        var rows = ""
        for line in invoice.lines {
            var description = escape(line.description)
            if line.eventCount > 0 {
                let counted = line.kind == .credit ? "paid for \(events(line.eventCount))" : events(line.eventCount)
                description += "<div class=\"events\">\(counted)</div>"
            }
            rows += """
                <tr class="\(line.kind.rawValue)"><td>\(line.id)</td><td>\(description)</td>\
                <td class="figure">\(escape(quantity(line)))</td>\
                <td class="figure">\(escape(unitPrice(line, rate: invoice.taxRate)))</td>\
                <td class="figure">\(money(line.amount, invoice.currency))</td></tr>

                """
        }
        if invoice.lines.isEmpty {
            rows = "<tr><td colspan=\"5\" class=\"empty\">No usage in this period.</td></tr>\n"
        }
        return """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <title>Invoice \(escape(invoice.id))</title>
            <style>
            body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; color: #1d2430; margin: 40px; }
            header { display: flex; justify-content: space-between; border-bottom: 2px solid #1d2430; }
            h1 { font-size: 28px; margin: 0 0 8px 0; letter-spacing: 1px; }
            .meta { text-align: right; font-size: 13px; line-height: 1.6; }
            .parties { display: flex; justify-content: space-between; margin: 24px 0; font-size: 14px; }
            .label { color: #6b7380; font-size: 11px; text-transform: uppercase; letter-spacing: 1px; }
            table { width: 100%; border-collapse: collapse; font-size: 13px; }
            th { text-align: left; border-bottom: 1px solid #1d2430; padding: 6px 4px; }
            td { border-bottom: 1px solid #e3e6ea; padding: 6px 4px; vertical-align: top; }
            .figure { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
            .events { color: #6b7380; font-size: 11px; }
            tr.adjustment td, tr.true_up td { background: #fbf7ea; }
            tr.tax td { color: #3a4250; }
            tr.credit td, tr.discount td { color: #1e6b3a; }
            .empty { text-align: center; color: #6b7380; padding: 24px; }
            .void { border: 2px solid #b3261e; color: #b3261e; font-weight: bold; padding: 8px 12px; }
            .totals { margin-left: auto; margin-top: 16px; width: 40%; font-size: 14px; }
            .totals td { border: none; padding: 4px; }
            .totals tr.total td { border-top: 2px solid #1d2430; font-weight: bold; font-size: 16px; }
            footer { margin-top: 40px; font-size: 11px; color: #6b7380; }
            @media print { body { margin: 16mm; } }
            </style>
            </head>
            <body>
            <header>
            <div><h1>INVOICE</h1><div>\(escape(invoice.seller))</div></div>
            <div class="meta">
            <div><span class="label">Invoice</span> \(escape(invoice.id))</div>
            <div><span class="label">Status</span> \(escape(invoice.status.rawValue))</div>
            <div><span class="label">Issued</span> \(escape(Timestamp.format(invoice.createdAt)))</div>
            \(invoice.productName.map { "<div><span class=\"label\">Product</span> \(escape($0))</div>" } ?? "")
            </div>
            </header>
            \(voidNotice(invoice).map { "<p class=\"void\">\(escape($0))</p>" } ?? "")
            <div class="parties">
            <div><div class="label">Billed to</div><div>\(escape(invoice.billedTo))</div>\
            <div class="events">\(escape(invoice.customerId))</div></div>
            <div><div class="label">Period</div><div>\(escape(Timestamp.format(invoice.period.start)))</div>\
            <div>to \(escape(Timestamp.format(invoice.period.end)))</div></div>
            </div>
            <table>
            <thead><tr><th>Line</th><th>Description</th><th class="figure">Quantity</th>\
            <th class="figure">Unit price</th><th class="figure">Amount (\(currency))</th></tr></thead>
            <tbody>
            \(rows)</tbody>
            </table>
            <table class="totals">
            <tr><td>Subtotal</td><td class="figure">\(money(invoice.subtotal, invoice.currency)) \(currency)</td></tr>
            <tr><td>Tax</td><td class="figure">\(money(invoice.tax, invoice.currency)) \(currency)</td></tr>
            <tr class="total"><td>Total</td><td class="figure">\(money(invoice.total, invoice.currency)) \(currency)\
            </td></tr>
            </table>
            <footer>Every usage line is the sum of its events' prices and every credit line what its grant paid, \
            rounded once to the cent; \
            each can be traced to its events (tollgate invoices trace).</footer>
            </body>
            </html>

            """
    }

    /// Text made safe inside HTML elements and attribute values.
    public static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
