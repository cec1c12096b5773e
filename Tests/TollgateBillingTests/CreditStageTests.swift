import Foundation
import Testing
import TollgateCore
import TollgatePricing
import TollgateStorage

@testable import TollgateBilling

/// The credits stage on its own: credit lines per grant from the period's draws, rounded like every line, never
/// more than the period owes, and a period fully paid by credit owing exactly nothing.
@Suite struct CreditStageTests {
    typealias Stages = CloseStagesTests

    static func facts(_ grants: [CreditGrant], trueUp: String = "0", tax: String = "0") -> PeriodFacts {
        PeriodFacts(
            calendar: .monthlyUTC, trueUp: try! Money(decimal: trueUp), taxRate: try! Money(decimal: tax),
            credit: CreditWallet(grants: grants))
    }

    static func grant(_ id: String, _ amount: String, priority: Int = 0, expiresAfter: Double? = nil) -> CreditGrant {
        CreditGrant(
            id: id, tenantId: "ten_1", customerId: "cus_1", currency: "USD", amount: try! Money(decimal: amount),
            kind: .promotional, priority: priority, grantedAt: Stages.periodStart,
            expiresAt: expiresAfter.map { Stages.periodStart.addingTimeInterval($0) })
    }

    static func summary(_ invoice: Invoice) -> [String] {
        invoice.lines.map {
            "\($0.id) \($0.kind.rawValue) \($0.exact.decimalString) → \($0.amount.decimalString) (\($0.eventCount))"
        }
    }

    /// Two tools at 0.015 a call: each line rounds up to 0.02, so the page says 0.04 where the calls cost 0.03.
    /// Credit drew the 0.03 exactly; the period is paid in full, so its line applies the 0.04 the page shows and the
    /// invoice owes nothing — while the grant has it.
    @Test func aPeriodPaidInFullByCredit_owesExactlyNothing() throws {
        let charges = [Stages.charge("a", cost: "0.015"), Stages.charge("b", cost: "0.015")]
        let invoice = try InvoiceClose.close(
            Stages.draft(), charges: charges, facts: Self.facts([Self.grant("g", "10")]))
        #expect(
            Self.summary(invoice) == [
                "L1 usage 0.015 → 0.02 (1)", "L2 usage 0.015 → 0.02 (1)", "L3 credit -0.03 → -0.04 (2)",
            ])
        #expect(invoice.total == .zero)
        #expect(invoice.creditApplications == [CreditDraw(grantId: "g", amount: try Money(decimal: "0.04"))])
        // A grant of exactly 0.03 cannot give the rounding's cent: the customer owes it.
        let tight = try InvoiceClose.close(
            Stages.draft(), charges: charges, facts: Self.facts([Self.grant("g", "0.03")]))
        #expect(tight.lines.last?.amount == (try Money(decimal: "-0.03")))
        #expect(tight.total == (try Money(decimal: "0.01")))
    }

    /// A re-rating's credit lowers what the period owes below what credit drew: the credit lines stop at zero, the
    /// earlier grant first, and the rest stays on the grants.
    @Test func creditNeverTakesThePeriodBelowZero() throws {
        let charges = [
            Stages.charge("a", cost: "1"), Stages.charge("a", cost: "-0.6", key: "rerate:rcp_x:plan@2"),
        ]
        let invoice = try InvoiceClose.close(
            Stages.draft(), charges: charges,
            facts: Self.facts([Self.grant("g1", "0.7"), Self.grant("g2", "5", priority: 1)]))
        #expect(
            Self.summary(invoice) == [
                "L1 usage 1 → 1 (1)", "L2 adjustment -0.6 → -0.6 (1)", "L3 credit -0.7 → -0.4 (1)",
                "L4 credit -0.3 → 0 (1)",
            ])
        #expect(invoice.total == .zero)
    }

    /// A committed minimum's true-up is drawn as the period ends; tax is on what credit left to pay.
    @Test func theTrueUpDrawsCredit_andTaxIsOnWhatIsLeft() throws {
        let charges = [Stages.charge("a", cost: "2")]
        let invoice = try InvoiceClose.close(
            Stages.draft(), charges: charges, facts: Self.facts([Self.grant("g", "3")], trueUp: "8", tax: "0.1"))
        #expect(
            Self.summary(invoice) == [
                "L1 usage 2 → 2 (1)", "L2 true_up 8 → 8 (0)", "L3 credit -3 → -3 (1)", "L4 tax 0.7 → 0.7 (0)",
            ])
        #expect(invoice.total == (try Money(decimal: "7.7")))
        // A grant that expired before the period ended does not pay the true-up.
        let expired = try InvoiceClose.close(
            Stages.draft(), charges: charges,
            facts: Self.facts([Self.grant("g", "30", expiresAfter: 3_600)], trueUp: "8"))
        #expect(expired.lines.last.map { "\($0.kind.rawValue) \($0.amount.decimalString)" } == "credit -2")
    }

    /// No grant, or no grant that paid: no credit line, and the stage is still listed as run.
    @Test func withoutCredit_thereIsNoCreditLine() throws {
        let charges = [Stages.charge("a", cost: "1")]
        let plain = try InvoiceClose.close(Stages.draft(), charges: charges, facts: Self.facts([]))
        #expect(plain.lines.map(\.kind) == [.usage])
        #expect(plain.stages.contains("credits"))
        let late = CreditGrant(
            id: "g", tenantId: "ten_1", customerId: "cus_1", currency: "USD", amount: try Money(decimal: "5"),
            kind: .prepaid, priority: 0, grantedAt: Stages.period.end, expiresAt: nil)
        let unpaid = try InvoiceClose.close(Stages.draft(), charges: charges, facts: Self.facts([late]))
        #expect(unpaid.lines.map(\.kind) == [.usage], "granted after every charge of the period")
    }
}
