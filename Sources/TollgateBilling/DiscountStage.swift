import Foundation
import TollgateCore
import TollgatePricing

extension InvoiceClose {
    /// The discounts stage: each discount of the customer in force as the period ends takes its part off what is
    /// left to pay after credit — a percentage of it, rounded once, half-even, to the minor unit, or a fixed amount
    /// (in the invoice's currency; one in another currency does not apply) — the oldest discount first, and never
    /// below zero. Each is a `discount` line, negative; tax is then on what they left.
    static func addDiscounts(_ discounts: [Discount], to invoice: inout Invoice) throws(MoneyError) {
        let applicable = discounts.filter { $0.applies(to: invoice.period) }.sorted(by: Discount.appliesBefore)
        guard !applicable.isEmpty else { return }
        let digits = Currency.minorUnitDigits(invoice.currency)
        var left = try printedSubtotal(invoice)
        for discount in applicable {
            let off: Money
            let text: String
            switch discount.off {
            case .percent(let percent):
                // left × percent / 100, rounded once to the minor unit.
                let unit = Int128(Money.nanosPerUnit(ofFractionDigits: digits))
                let scaled = ExactAmount.divideHalfEven(
                    Int128(max(left.nanos, 0)) * Int128(percent.nanos), by: 100 * Int128(Money.nanosPerUnit) * unit)
                guard let nanos = Int64(exactly: scaled * unit) else { throw .overflow }
                off = Money(nanos: nanos)
                text = "\(percent.decimalString) % off"
            case .amount(let amount, let currency):
                guard currency == invoice.currency else { continue }
                off = min(amount, max(left, .zero))
                text = "\(amount.decimalString) \(currency) off"
            }
            guard off > .zero else { continue }
            left = try left.subtracting(off)
            let negative = Money(nanos: -off.nanos)
            invoice.lines.append(
                InvoiceLine(
                    number: invoice.lines.count + 1, kind: .discount,
                    description: "discount \(discount.id): \(text)"
                        + (discount.description.isEmpty ? "" : " (\(discount.description))"),
                    unit: "discount", quantity: 1, unitPrice: nil, exact: negative, amount: negative,
                    discountId: discount.id, receipts: [], eventCount: 0))
        }
    }
}
