import Foundation
import Testing
import TollgateCore

/// The credit wallet's arithmetic: which grants a charge draws, in what order, and what each has left.
@Suite struct CreditWalletTests {
    static let start = Timestamp.parse("2026-12-01T00:00:00Z")!

    static func grant(
        _ id: String, _ amount: String, priority: Int = 0, currency: String = "USD", grantedAfter: Double = 0,
        expiresAfter: Double? = nil
    ) -> CreditGrant {
        CreditGrant(
            id: id, tenantId: "ten_1", customerId: "cus_1", currency: currency, amount: try! Money(decimal: amount),
            kind: .prepaid, priority: priority, grantedAt: start.addingTimeInterval(grantedAfter),
            expiresAt: expiresAfter.map { start.addingTimeInterval($0) })
    }

    static func at(_ seconds: Double) -> Date { start.addingTimeInterval(seconds) }
    static func money(_ text: String) -> Money { try! Money(decimal: text) }

    /// Lower priority numbers first; among equals the soonest expiry, a grant that never expires last; a charge
    /// larger than one grant spills into the next.
    @Test func grantsAreDrawnByPriority_thenTheSoonestExpiry() {
        var wallet = CreditWallet(grants: [
            Self.grant("g-never", "1", priority: 1),
            Self.grant("g-late", "1", priority: 1, expiresAfter: 9_000),
            Self.grant("g-soon", "1", priority: 1, expiresAfter: 5_000),
            Self.grant("g-first", "0.5", priority: 0),
        ])
        #expect(wallet.grants.map(\.id) == ["g-first", "g-soon", "g-late", "g-never"])
        let draws = wallet.draw(Self.money("2"), currency: "USD", at: Self.at(60))
        #expect(
            draws == [
                CreditDraw(grantId: "g-first", amount: Self.money("0.5")),
                CreditDraw(grantId: "g-soon", amount: Self.money("1")),
                CreditDraw(grantId: "g-late", amount: Self.money("0.5")),
            ])
        #expect(wallet.available("USD", at: Self.at(60)) == Self.money("1.5"))
        // Past the second expiry only the grant that never expires is left.
        #expect(wallet.available("USD", at: Self.at(9_000)) == Self.money("1"))
    }

    /// A grant draws only for charges from the moment it is granted until (not at) its expiry, in its currency;
    /// a charge of zero or less draws nothing; what no grant covers is simply not drawn.
    @Test func onlyActiveGrantsInTheCurrencyDraw() {
        var wallet = CreditWallet(grants: [
            Self.grant("g-usd", "1", grantedAfter: 100, expiresAfter: 200),
            Self.grant("g-eur", "5", currency: "EUR"),
        ])
        #expect(wallet.draw(Self.money("0.4"), currency: "USD", at: Self.at(99)).isEmpty, "before it was granted")
        #expect(wallet.draw(Self.money("0.4"), currency: "USD", at: Self.at(200)).isEmpty, "at its expiry")
        #expect(wallet.draw(Self.money("-0.4"), currency: "USD", at: Self.at(150)).isEmpty, "a credit draws nothing")
        #expect(wallet.draw(.zero, currency: "USD", at: Self.at(150)).isEmpty)
        #expect(
            wallet.draw(Self.money("3"), currency: "USD", at: Self.at(150)) == [
                .init(grantId: "g-usd", amount: Self.money("1"))
            ])
        #expect(wallet.draw(Self.money("1"), currency: "USD", at: Self.at(150)).isEmpty, "used up")
        #expect(wallet.available("EUR", at: Self.at(150)) == Self.money("5"))
        #expect(wallet.available("USD", at: Self.at(150)) == .zero)
    }

    /// What invoices applied counts as used: a grant has its amount less what invoices applied and what was drawn
    /// since, never below zero.
    @Test func invoicedAndDrawnBothCountAsUsed() {
        let grant = Self.grant("g", "1")
        var wallet = CreditWallet(grants: [grant], invoiced: ["g": Self.money("0.7")])
        #expect(wallet.remaining(grant) == Self.money("0.3"))
        wallet.draw(Self.money("0.1"), currency: "USD", at: Self.at(1))
        #expect(wallet.remaining(grant) == Self.money("0.2"))
        #expect(wallet.draws == [.init(grantId: "g", amount: Self.money("0.1"))])
        let over = CreditWallet(grants: [grant], invoiced: ["g": Self.money("1.005")])
        #expect(over.remaining(grant) == .zero, "a rounding's half cent over leaves nothing, not less")
    }
}
