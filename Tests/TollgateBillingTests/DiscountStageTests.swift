import Foundation
import Testing
import TollgateCore
import TollgatePricing
import TollgateStorage

@testable import TollgateBilling

/// The discounts stage on its own: in force as the period ends, the oldest first, a percentage rounded once or a
/// fixed amount, never below zero, after credit and before tax.
@Suite struct DiscountStageTests {
    typealias Stages = CloseStagesTests

    static func discount(
        _ id: String, _ off: Discount.Off, startsAfter: Double = -86_400, endsAfter: Double? = nil,
        createdAfter: Double = 0
    ) -> Discount {
        Discount(
            id: id, tenantId: "ten_1", customerId: "cus_1", off: off,
            startsAt: Stages.periodStart.addingTimeInterval(startsAfter),
            endsAt: endsAfter.map { Stages.periodStart.addingTimeInterval($0) },
            createdAt: Stages.periodStart.addingTimeInterval(createdAfter))
    }

    static func money(_ text: String) -> Money { try! Money(decimal: text) }

    static func summary(_ invoice: Invoice) -> [String] {
        invoice.lines.map { "\($0.kind.rawValue) \($0.amount.decimalString)" }
    }

    /// 12.5 % of 10.05 is 1.25625, rounded once to 1.26; then 2.00 off; tax at 10 % on the 6.79 left.
    @Test func percentThenAmount_theOldestFirst_andTaxOnWhatIsLeft() throws {
        let charges = [Stages.charge("a", cost: "10.05")]
        let facts = PeriodFacts(
            calendar: .monthlyUTC, taxRate: Self.money("0.1"),
            discounts: [
                Self.discount("d-amount", .amount(Self.money("2"), currency: "USD"), createdAfter: 10),
                Self.discount("d-percent", .percent(Self.money("12.5")), createdAfter: 5),
            ])
        let invoice = try InvoiceClose.close(Stages.draft(), charges: charges, facts: facts)
        #expect(Self.summary(invoice) == ["usage 10.05", "discount -1.26", "discount -2", "tax 0.68"])
        #expect(invoice.lines[1].discountId == "d-percent")
        #expect(invoice.subtotal == Self.money("6.79"))
        #expect(invoice.total == Self.money("7.47"))
        #expect(invoice.stages == CloseStage.allCases.map(\.rawValue))
    }

    /// A discount applies to the period it is in force at the end of: one that starts on its last day does, one that
    /// ends before its end does not, nor one in another currency; an amount off larger than the bill stops at zero.
    @Test func inForceAsThePeriodEnds_inItsCurrency_neverBelowZero() throws {
        let charges = [Stages.charge("a", cost: "3")]
        let lastDay = Stages.period.end.timeIntervalSince(Stages.periodStart) - 86_400
        let facts = PeriodFacts(
            calendar: .monthlyUTC,
            discounts: [
                Self.discount("d-ended", .percent(Self.money("50")), endsAfter: lastDay),
                Self.discount("d-euro", .amount(Self.money("1"), currency: "EUR"), createdAfter: 1),
                Self.discount(
                    "d-late", .amount(Self.money("5"), currency: "USD"), startsAfter: lastDay, createdAfter: 2),
                Self.discount("d-more", .percent(Self.money("10")), createdAfter: 3),
            ])
        let invoice = try InvoiceClose.close(Stages.draft(), charges: charges, facts: facts)
        #expect(Self.summary(invoice) == ["usage 3", "discount -3"], "the 10 % has nothing left to take")
        #expect(invoice.total == .zero)
        let next = BillingPeriod(start: Stages.period.end, end: Stages.period.end.addingTimeInterval(30 * 86_400))
        #expect(!Self.discount("d", .percent(Self.money("1")), startsAfter: 0, endsAfter: 60).applies(to: next))
        #expect(Self.discount("d", .percent(Self.money("1")), startsAfter: 0).applies(to: next))
    }

    /// Credit first, then the discount on what credit left (the order of the stages); a period fully paid by
    /// credit gets no discount line.
    @Test func theDiscountIsOnWhatCreditLeft() throws {
        let charges = [Stages.charge("a", cost: "10")]
        let grant = CreditGrant(
            id: "g", tenantId: "ten_1", customerId: "cus_1", currency: "USD", amount: Self.money("4"), kind: .prepaid,
            priority: 0, grantedAt: Stages.periodStart, expiresAt: nil)
        let facts = PeriodFacts(
            calendar: .monthlyUTC, credit: CreditWallet(grants: [grant]),
            discounts: [Self.discount("d", .percent(Self.money("50")))])
        let invoice = try InvoiceClose.close(Stages.draft(), charges: charges, facts: facts)
        #expect(Self.summary(invoice) == ["usage 10", "credit -4", "discount -3"])
        var rich = facts
        rich.credit = CreditWallet(grants: [
            CreditGrant(
                id: "g", tenantId: "ten_1", customerId: "cus_1", currency: "USD", amount: Self.money("40"),
                kind: .prepaid, priority: 0, grantedAt: Stages.periodStart, expiresAt: nil)
        ])
        #expect(
            Self.summary(try InvoiceClose.close(Stages.draft(), charges: charges, facts: rich)) == [
                "usage 10", "credit -10",
            ])
    }
}
