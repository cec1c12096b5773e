import Foundation
import Synchronization
import Testing
import TollgateCore
import TollgateJSON
import TollgatePricing
import TollgateStorage

@testable import TollgateBilling

@Suite struct CloseStagesTests {
    static let periodStart = Timestamp.parse("2026-11-01T00:00:00Z")!
    static let period = BillingPeriod(start: periodStart, end: Timestamp.parse("2026-12-01T00:00:00Z")!)
    static let facts = PeriodFacts(calendar: .monthlyUTC)

    static func draft(currency: String = "USD") -> Invoice {
        Invoice(
            id: "inv_1", tenantId: "ten_1", customerId: "cus_1", subscriptionId: "sub_1", period: period,
            currency: currency, createdAt: Timestamp.parse("2026-12-01T00:00:05Z")!)
    }

    static let counter = Atomic<Int>(0)
    static func charge(
        _ tool: String, cost: String, quantity: Int64 = 1, agent: String = "agt_a", tokens: Int64 = 0,
        model: String? = nil, key: String? = nil, occurredAt: String? = nil, secondsIn: Double = 60
    ) -> ChargeRecord {
        let number = counter.add(1, ordering: .relaxed).newValue
        var record = ChargeRecord(
            receiptId: String(format: "rcp_%07d", number), tenantId: "ten_1",
            path: ChargePath(customerId: "cus_1", teamId: "team_1", agentId: agent, sessionId: "s", credentialId: "c"),
            subscriptionId: "sub_1", planId: "plan_1", planVersion: 1, tool: tool, quantity: quantity,
            inputTokens: tokens, cost: try! Money(decimal: cost), model: model, currency: "USD",
            idempotencyKey: key ?? "k\(number)", at: periodStart.addingTimeInterval(secondsIn))
        record.occurredAt = occurredAt.flatMap(Timestamp.parse)
        return record
    }

    /// A graduated tier's calls are split by price, included calls are marked, tokens go per model, and every
    /// line's exact amount is the sum of its events' prices.
    @Test func linesSplitByToolAndPrice_andEachSumsItsEvents() throws {
        let charges = [
            Self.charge("search", cost: "1.00"), Self.charge("search", cost: "1.00"),
            Self.charge("search", cost: "0.50"),
            Self.charge("fetch", cost: "0"), Self.charge("fetch", cost: "0"),
            Self.charge("llm", cost: "0.0042", quantity: 0, tokens: 1400, model: "m1"),
            Self.charge("llm", cost: "0.0001", quantity: 0, tokens: 100, model: "m1"),
            Self.charge("pages", cost: "0.30", quantity: 3),
        ]
        let invoice = try InvoiceClose.close(Self.draft(), charges: charges, facts: Self.facts)
        let summary = invoice.lines.map {
            "\($0.id) \($0.kind.rawValue) \($0.description) \($0.quantity) \($0.unit) "
                + "@\($0.unitPrice?.decimalString ?? "-") = \($0.exact.decimalString) → \($0.amount.decimalString)"
        }
        #expect(
            summary == [
                "L1 usage llm (m1) 1500 tokens @- = 0.0043 → 0",
                "L2 usage pages 3 units @0.1 = 0.3 → 0.3",
                "L3 usage search 2 calls @1 = 2 → 2",
                "L4 usage search 1 calls @0.5 = 0.5 → 0.5",
                "L5 included fetch: included in the plan 2 calls @0 = 0 → 0",
            ], "\(summary)")
        for line in invoice.lines {
            let sum = try line.receipts.reduce(Money.zero) { sum, receipt in
                try sum.adding(charges.first { $0.receiptId == receipt }!.cost)
            }
            #expect(sum == line.exact && line.eventCount == line.receipts.count, "\(line.id)")
        }
        #expect(Set(invoice.lines.flatMap(\.receipts)) == Set(charges.map(\.receiptId)))
        let subtotal = try Money(decimal: "2.8")
        #expect(invoice.status == .finalized && invoice.subtotal == subtotal)
        #expect(invoice.total == invoice.subtotal && invoice.stages == CloseStage.allCases.map(\.rawValue))
    }

    /// Each line is rounded once, half-even, at the currency's minor unit (0.125 → 0.12, 0.135 → 0.14; yen have
    /// none), and the totals are the sums of the rounded lines, to the cent.
    @Test func eachLineIsRoundedHalfEvenOnce_andTheTotalsAddUp() throws {
        let charges = [
            Self.charge("a", cost: "0.125"), Self.charge("b", cost: "0.135"), Self.charge("c", cost: "0.0049"),
        ]
        let invoice = try InvoiceClose.close(Self.draft(), charges: charges, facts: Self.facts)
        #expect(invoice.lines.map(\.amount.decimalString) == ["0.12", "0.14", "0"])
        #expect(invoice.total.decimalString == "0.26")
        let yen = try InvoiceClose.close(
            Self.draft(currency: "JPY"), charges: [Self.charge("a", cost: "2.5"), Self.charge("b", cost: "3.5")],
            facts: Self.facts)
        #expect(yen.lines.map(\.amount.decimalString) == ["2", "4"] && yen.total.decimalString == "6")
    }

    /// A late event's usage is its own line naming the period it occurred in; a re-rating's difference is its own
    /// line too. Neither is mixed with the period's own usage.
    @Test func lateUsageAndReRatingsAreAdjustmentLines() throws {
        let charges = [
            Self.charge("search", cost: "0.01"),
            Self.charge("search", cost: "0.01", occurredAt: "2026-10-30T12:00:00Z"),
            Self.charge("search", cost: "-0.004", quantity: 0, key: "rerate:rcp_x:plan_1@2"),
        ]
        let invoice = try InvoiceClose.close(Self.draft(), charges: charges, facts: Self.facts)
        #expect(invoice.lines.map(\.kind) == [.usage, .adjustment, .adjustment])
        let late = invoice.lines[1]
        #expect(late.adjusts == BillingPeriod(start: Timestamp.parse("2026-10-01T00:00:00Z")!, end: Self.periodStart))
        #expect(late.description == "search: late usage from the period starting 2026-10-01T00:00:00.000Z")
        #expect(invoice.lines[2].description == "search: re-rating difference" && invoice.lines[2].exact.nanos < 0)
        // An event that occurred within the period is its own period's usage, late or not.
        let onTime = try InvoiceClose.close(
            Self.draft(), charges: [Self.charge("search", cost: "0.01", occurredAt: "2026-11-01T00:00:00Z")],
            facts: Self.facts)
        #expect(onTime.lines.map(\.kind) == [.usage])
    }

    /// Where the plan allocates a commitment among agents, each agent's calls are their own lines; the true-up
    /// comes after the usage, and tax on the rounded subtotal after that.
    @Test func perAgentLines_trueUp_andTaxOnTheRoundedSubtotal() throws {
        let charges = [
            Self.charge("search", cost: "0.01", agent: "agt_b"), Self.charge("search", cost: "0.01", agent: "agt_a"),
            Self.charge("search", cost: "0.01", agent: "agt_b"),
        ]
        let facts = PeriodFacts(
            calendar: .monthlyUTC, perAgent: true, trueUp: try Money(decimal: "9.97"),
            taxRate: try Money(decimal: "0.2"))
        let invoice = try InvoiceClose.close(Self.draft(), charges: charges, facts: facts)
        #expect(invoice.lines.map(\.kind) == [.usage, .usage, .trueUp, .tax])
        #expect(invoice.lines.map { $0.agentId ?? "-" } == ["agt_a", "agt_b", "-", "-"])
        #expect(invoice.lines.map(\.amount.decimalString) == ["0.01", "0.02", "9.97", "2"])
        #expect(invoice.subtotal.decimalString == "10" && invoice.tax.decimalString == "2")
        #expect(invoice.total.decimalString == "12" && invoice.lines[3].description == "tax at 20 %")
        // 20 % of 0.03 is 0.006: rounded once, to 0.01.
        let small = try InvoiceClose.close(
            Self.draft(), charges: charges,
            facts: PeriodFacts(calendar: .monthlyUTC, taxRate: try Money(decimal: "0.2")))
        #expect(small.tax.decimalString == "0.01" && small.total.decimalString == "0.04")
    }

    /// A period with no usage still closes: an empty invoice, or only its commitment's true-up.
    @Test func anEmptyPeriodClosesToNothingButItsCommitment() throws {
        let empty = try InvoiceClose.close(Self.draft(), charges: [], facts: Self.facts)
        #expect(empty.lines.isEmpty && empty.total == .zero && empty.status == .finalized)
        let committed = try InvoiceClose.close(
            Self.draft(), charges: [], facts: PeriodFacts(calendar: .monthlyUTC, trueUp: try Money(decimal: "100")))
        #expect(committed.lines.map(\.kind) == [.trueUp] && committed.total.decimalString == "100")
    }

    /// The stored form reads back as it was written (without the receipts, which are paged separately).
    @Test func theStoredFormReadsBack() throws {
        let charges = [
            Self.charge("search", cost: "1.00"),
            Self.charge("search", cost: "0.01", occurredAt: "2026-10-30T12:00:00Z"),
        ]
        var invoice = try InvoiceClose.close(
            Self.draft(), charges: charges,
            facts: PeriodFacts(calendar: .monthlyUTC, taxRate: try Money(decimal: "0.07")))
        let read = try Invoice(json: JSONCodec.parse(Array(JSONCodec.string(invoice.json).utf8)), tenantId: "ten_1")
        for index in invoice.lines.indices { invoice.lines[index].receipts = [] }
        #expect(read == invoice)
    }

    /// A random month of usage: the lines' exact amounts add up to the period's charges exactly, every line is
    /// the sum of its own events, and the total is the sum of the rounded lines.
    @Test(arguments: 1...5)
    func randomUsage_linesAddUpToTheCharges(seed: Int) throws {
        var generator = SplitMix64(seed: UInt64(seed))
        let tools = ["search", "fetch", "summarize", "llm"]
        var charges: [ChargeRecord] = []
        for index in 0..<2_000 {
            let tool = tools[Int(generator.next() % 4)]
            let cost = Money(nanos: Int64(generator.next() % 3_000_000))
            var charge = Self.charge(
                tool, cost: cost.decimalString, quantity: tool == "llm" ? 0 : Int64(1 + generator.next() % 3),
                agent: ["agt_a", "agt_b"][Int(generator.next() % 2)], tokens: tool == "llm" ? 1000 : 0,
                model: tool == "llm" ? "m" : nil, secondsIn: Double(index))
            if generator.next() % 20 == 0 { charge.occurredAt = Self.periodStart.addingTimeInterval(-86_400 * 3) }
            charges.append(charge)
        }
        let invoice = try InvoiceClose.close(
            Self.draft(), charges: charges,
            facts: PeriodFacts(calendar: .monthlyUTC, perAgent: seed % 2 == 0, taxRate: try Money(decimal: "0.19")))
        let byReceipt = Dictionary(uniqueKeysWithValues: charges.map { ($0.receiptId, $0.cost) })
        var sumOfLines = Money.zero
        var sumOfAmounts = Money.zero
        for line in invoice.lines where line.kind != .tax {
            let events = try line.receipts.reduce(Money.zero) { try $0.adding(byReceipt[$1]!) }
            #expect(events == line.exact, "\(line.id)")
            sumOfLines = try sumOfLines.adding(line.exact)
            sumOfAmounts = try sumOfAmounts.adding(line.amount)
        }
        let sumOfCharges = try charges.reduce(Money.zero) { try $0.adding($1.cost) }
        #expect(sumOfLines == sumOfCharges)
        let total = try sumOfAmounts.adding(invoice.tax)
        #expect(invoice.subtotal == sumOfAmounts && invoice.total == total)
        #expect(invoice.lines.flatMap(\.receipts).count == charges.count)
    }
}
