import Foundation
import TollgateCore
import TollgatePricing
import TollgateStorage

/// The stages that close a period into an invoice, in the order they run. Each is a function of the invoice so
/// far and the period's facts, with no storage and no clock, tested on its own (`CloseStagesTests`).
///
/// Every call was priced when it was recorded, marginally (its price is what the period costs with it, less what
/// it cost without), so the period's charges already add up to what the plan makes of its usage: closing groups
/// them into lines, adds what only the period's end decides (a commitment's true-up, tax) and rounds. It never
/// prices a call again — which is how every line's amount is exactly the sum of its events' prices.
public enum CloseStage: String, CaseIterable, Sendable {
    /// The period's charges into lines: per tool and price (per agent too, where the plan allocates), tokens
    /// per model, late usage per period it belongs to, re-ratings on their own.
    case aggregate
    /// Lines of calls priced 0 — a bundle's, a commitment's or a free tier's allowance — marked as included.
    case allowances
    /// Each line's quantity, unit price and exact amount: the sum of its events' prices.
    case rate
    /// A committed minimum's true-up, when the period's usage did not reach it.
    case commitments
    /// What the customer's credit grants paid: the period's charges draw them as they did live.
    case credits
    /// What the customer's discounts in force as the period ends take off what credit left to pay.
    case discounts
    /// The customer's tax rate on the rounded subtotal.
    case tax
    /// Lines numbered, every amount rounded once, half-even, to the currency's minor unit; totals summed.
    case finalize
}

/// What closing a period works from, besides its charges.
public struct PeriodFacts: Sendable {
    /// The subscription's calendar: which period a late event belongs to.
    public var calendar: BillingCalendar
    /// Lines per agent as well as per tool: the plan divides its commitment among agents.
    public var perAgent: Bool
    /// What the committed minimum adds, exact (the plan's rating of the period says); zero without one.
    public var trueUp: Money
    /// The customer's tax rate (0.2 is 20 %).
    public var taxRate: Money
    /// The customer's credit as the period starts: its grants, what invoices applied, and what usage charged
    /// before the period drew that no invoice holds yet.
    public var credit: CreditWallet
    /// The customer's discounts (the stage keeps those in force as the period ends).
    public var discounts: [Discount]

    public init(
        calendar: BillingCalendar, perAgent: Bool = false, trueUp: Money = .zero, taxRate: Money = .zero,
        credit: CreditWallet = CreditWallet(), discounts: [Discount] = []
    ) {
        self.discounts = discounts
        self.calendar = calendar
        self.perAgent = perAgent
        self.trueUp = trueUp
        self.taxRate = taxRate
        self.credit = credit
    }
}

public enum InvoiceClose {
    /// Runs every stage on `invoice` (its period, currency and ids set; no lines yet) over `charges` (the
    /// period's, in recorded order). With `finalizing` false the invoice stays a draft: the open period's
    /// invoice so far.
    public static func close(
        _ invoice: Invoice, charges: [ChargeRecord], facts: PeriodFacts, finalizing: Bool = true
    ) throws(MoneyError) -> Invoice {
        var invoice = invoice
        var groups = aggregate(charges, period: invoice.period, facts: facts)
        markAllowances(&groups)
        invoice.lines = try rate(groups)
        try addTrueUp(facts.trueUp, to: &invoice)
        try addCredits(facts.credit, charges: charges, trueUp: facts.trueUp, to: &invoice)
        try addDiscounts(facts.discounts, to: &invoice)
        try addTax(facts.taxRate, to: &invoice)
        try finalize(&invoice, finalizing: finalizing)
        invoice.stages = CloseStage.allCases.map(\.rawValue)
        return invoice
    }

    // MARK: aggregate

    /// What makes two charges one line.
    struct LineKey: Hashable, Comparable {
        var kind: InvoiceLine.Kind
        var tool: String
        var agentId: String?
        var model: String?
        var unit: String
        /// Nanos per unit, when the charge's price divides evenly by its quantity; nil for tokens.
        var unitPrice: Int64?
        var adjusts: BillingPeriod?
        var rerating = false

        /// Usage, then included calls, then adjustments (late usage by period, oldest first, then re-ratings),
        /// then by tool, agent, model, unit, and the higher price first (a graduated plan's tiers from the top).
        static func < (lhs: LineKey, rhs: LineKey) -> Bool {
            let kinds = InvoiceLine.Kind.allCases
            if lhs.kind != rhs.kind { return kinds.firstIndex(of: lhs.kind)! < kinds.firstIndex(of: rhs.kind)! }
            let (left, right) = (lhs.adjusts?.start ?? .distantFuture, rhs.adjusts?.start ?? .distantFuture)
            if left != right { return left < right }
            let names = { (key: LineKey) in (key.tool, key.agentId ?? "", key.model ?? "", key.unit) }
            if names(lhs) != names(rhs) { return names(lhs) < names(rhs) }
            return (-(lhs.unitPrice ?? 0), lhs.rerating ? 1 : 0) < (-(rhs.unitPrice ?? 0), rhs.rerating ? 1 : 0)
        }
    }

    /// A line in the making: its key and its charges, in recorded order.
    struct Group {
        var key: LineKey
        var charges: [ChargeRecord]
    }

    static func aggregate(_ charges: [ChargeRecord], period: BillingPeriod, facts: PeriodFacts) -> [Group] {
        var groups: [LineKey: Int] = [:]
        var ordered: [Group] = []
        for charge in charges {
            var key = LineKey(
                kind: .usage, tool: charge.tool, agentId: facts.perAgent ? charge.agentId : nil, model: nil,
                unit: "calls", unitPrice: nil)
            if charge.idempotencyKey.hasPrefix("rerate:") {
                // A re-rating's difference: a charge or credit of no quantity, shown on its own.
                key.kind = .adjustment
                key.rerating = true
                key.unit = "calls"
            } else if charge.quantity == 0 && charge.inputTokens + charge.outputTokens + charge.reasoningTokens > 0 {
                key.unit = "tokens"
                key.model = charge.model ?? ""
            } else if charge.quantity > 0, charge.cost.nanos % charge.quantity == 0 {
                key.unitPrice = charge.cost.nanos / charge.quantity
                key.unit = charge.quantity == 1 ? "calls" : "units"
            } else {
                key.unit = "units"
            }
            if let occurred = charge.occurredAt, occurred < period.start {
                key.kind = .adjustment
                key.adjusts = facts.calendar.period(containing: occurred)
            }
            if let index = groups[key] {
                ordered[index].charges.append(charge)
            } else {
                groups[key] = ordered.count
                ordered.append(Group(key: key, charges: [charge]))
            }
        }
        return ordered
    }

    // MARK: allowances

    static func markAllowances(_ groups: inout [Group]) {
        for index in groups.indices where groups[index].key.kind == .usage && groups[index].key.unitPrice == 0 {
            groups[index].key.kind = .included
        }
    }

    // MARK: rate

    static func rate(_ groups: [Group]) throws(MoneyError) -> [InvoiceLine] {
        var lines: [InvoiceLine] = []
        for group in groups.sorted(by: { $0.key < $1.key }) {
            var exact = Money.zero
            var quantity: Int64 = 0
            for charge in group.charges {
                exact = try exact.adding(charge.cost)
                let tokens = charge.inputTokens + charge.outputTokens + charge.reasoningTokens
                quantity += group.key.unit == "tokens" ? tokens : charge.quantity
            }
            let key = group.key
            lines.append(
                InvoiceLine(
                    number: lines.count + 1, kind: key.kind, description: description(key), tool: key.tool,
                    agentId: key.agentId, model: key.model, unit: key.unit, quantity: quantity,
                    unitPrice: key.unitPrice.map(Money.init(nanos:)), exact: exact, amount: exact,
                    adjusts: key.adjusts, receipts: group.charges.map(\.receiptId), eventCount: group.charges.count))
        }
        return lines
    }

    static func description(_ key: LineKey) -> String {
        var text = key.tool
        if let model = key.model, !model.isEmpty { text += " (\(model))" }
        if let agentId = key.agentId { text += " — agent \(agentId)" }
        switch key.kind {
        case .included: text += ": included in the plan"
        case .adjustment where key.rerating: text += ": re-rating difference"
        case .adjustment:
            if let adjusts = key.adjusts {
                text += ": late usage from the period starting \(Timestamp.format(adjusts.start))"
            }
        default: break
        }
        return text
    }

    // MARK: commitments

    static func addTrueUp(_ trueUp: Money, to invoice: inout Invoice) throws(MoneyError) {
        guard trueUp > .zero else { return }
        invoice.lines.append(
            InvoiceLine(
                number: invoice.lines.count + 1, kind: .trueUp,
                description: "true-up to the committed minimum", unit: "period", quantity: 1, unitPrice: trueUp,
                exact: trueUp, amount: trueUp, receipts: [], eventCount: 0))
    }

    // MARK: tax

    /// Tax is the rate times the subtotal as the invoice prints it (the sum of the rounded lines), so that a
    /// reader can check it from the page; it is then rounded once like every line.
    static func addTax(_ rate: Money, to invoice: inout Invoice) throws(MoneyError) {
        guard rate > .zero else { return }
        let subtotal = try printedSubtotal(invoice)
        let tax = try ExactAmount(subtotal, times: Factor(billionths: rate.nanos)).rounded()
        invoice.lines.append(
            InvoiceLine(
                number: invoice.lines.count + 1, kind: .tax, description: "tax at \(percent(rate)) %", unit: "rate",
                quantity: 1, unitPrice: nil, exact: tax, amount: tax, receipts: [], eventCount: 0))
    }

    static func percent(_ rate: Money) -> String { Money(nanos: rate.nanos * 100).decimalString }

    // MARK: finalize

    /// The sum of the invoice's lines but tax as it prints them (each rounded once): what credit, discounts and tax
    /// are worked out from, so that a reader can check them from the page.
    static func printedSubtotal(_ invoice: Invoice) throws(MoneyError) -> Money {
        let digits = Currency.minorUnitDigits(invoice.currency)
        var subtotal = Money.zero
        for line in invoice.lines where line.kind != .tax {
            subtotal = try subtotal.adding(try rounded(line, digits: digits))
        }
        return subtotal
    }

    /// A line's amount as the invoice prints it: its exact amount rounded once, half-even — except a credit's,
    /// which the credit stage decided in minor units already.
    static func rounded(_ line: InvoiceLine, digits: Int) throws(MoneyError) -> Money {
        line.kind == .credit ? line.amount : try line.exact.rounded(toFractionDigits: digits)
    }

    static func finalize(_ invoice: inout Invoice, finalizing: Bool) throws(MoneyError) {
        let digits = Currency.minorUnitDigits(invoice.currency)
        var subtotal = Money.zero
        var tax = Money.zero
        for index in invoice.lines.indices {
            invoice.lines[index].number = index + 1
            let amount = try rounded(invoice.lines[index], digits: digits)
            invoice.lines[index].amount = amount
            if invoice.lines[index].kind == .tax {
                tax = try tax.adding(amount)
            } else {
                subtotal = try subtotal.adding(amount)
            }
        }
        invoice.subtotal = subtotal
        invoice.tax = tax
        invoice.total = try subtotal.adding(tax)
        invoice.status = finalizing ? .finalized : .draft
    }
}
