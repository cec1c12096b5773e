import Foundation
import TollgateCore
import TollgatePricing
import TollgateStorage

extension InvoiceClose {
    /// The credits stage: the period's charges draw the customer's credit in the order they were recorded, as
    /// they did live (`CreditWallet`), and a committed minimum's true-up draws as the period ends. Each grant that
    /// paid gets a line of its own, with the receipts of the charges it paid for.
    ///
    /// A credit line applies its draws rounded half-even to the minor unit, as every line is rounded, and never
    /// more than leaves the subtotal at zero (a re-rating's credit can make the period owe less than the
    /// credit drew). When credit paid for the whole period, the last line takes the difference the rounding of
    /// the other lines left, as far as its grant has it, so that a fully paid period owes exactly nothing.
    static func addCredits(
        _ credit: CreditWallet, charges: [ChargeRecord], trueUp: Money, to invoice: inout Invoice
    ) throws(MoneyError) {
        guard !credit.grants.isEmpty else { return }
        var wallet = credit
        var receipts: [String: [String]] = [:]
        var owed = Money.zero
        for charge in charges where charge.cost > .zero {
            owed = try owed.adding(charge.cost)
            for draw in wallet.draw(charge.cost, currency: invoice.currency, at: charge.at) {
                receipts[draw.grantId, default: []].append(charge.receiptId)
            }
        }
        if trueUp > .zero {
            owed = try owed.adding(trueUp)
            wallet.draw(trueUp, currency: invoice.currency, at: invoice.period.end.addingTimeInterval(-0.001))
        }
        let draws = wallet.draws
        guard !draws.isEmpty else { return }
        let digits = Currency.minorUnitDigits(invoice.currency)
        var left = try printedSubtotal(invoice)
        var paid = Money.zero
        for draw in draws { paid = try paid.adding(draw.amount) }
        let grants = Dictionary(uniqueKeysWithValues: credit.grants.map { ($0.id, $0) })
        for (index, draw) in draws.enumerated() {
            var applied = min(try draw.amount.rounded(toFractionDigits: digits), max(left, .zero))
            if index == draws.count - 1, paid == owed, let grant = grants[draw.grantId] {
                let budget = credit.remaining(grant).roundedDown(toFractionDigits: digits)
                applied = max(applied, min(left, budget))
            }
            left = try left.subtracting(applied)
            let grant = grants[draw.grantId]
            invoice.lines.append(
                InvoiceLine(
                    number: invoice.lines.count + 1, kind: .credit,
                    description: "\(grant?.kind.rawValue ?? "") credit \(draw.grantId)"
                        + (grant?.description.isEmpty == false ? " (\(grant!.description))" : ""),
                    unit: "credit", quantity: 1, unitPrice: nil, exact: Money(nanos: -draw.amount.nanos),
                    amount: Money(nanos: -applied.nanos), creditGrantId: draw.grantId,
                    receipts: receipts[draw.grantId] ?? [], eventCount: receipts[draw.grantId]?.count ?? 0))
        }
    }
}
