import Foundation
import Testing
import TollgateCore
import TollgateJSON
import TollgateStorage

@testable import TollgateBilling

@Suite struct InvoiceRenderingTests {
    static func invoice(currency: String = "USD") throws -> Invoice {
        var draft = CloseStagesTests.draft(currency: currency)
        draft.seller = "Acme MCP Tools"
        draft.billedTo = #"Kiwi <script>alert("x")</script> & Co, "Ltd""#
        let charges = [
            CloseStagesTests.charge(#"search, "deep""#, cost: "1.5"), CloseStagesTests.charge("fetch", cost: "0.25"),
        ]
        return try InvoiceClose.close(
            draft, charges: charges,
            facts: PeriodFacts(calendar: .monthlyUTC, taxRate: try Money(decimal: "0.1")))
    }

    /// A product's invoice names it; credit and discount lines show their amounts, no quantity, and what a credit
    /// paid for; the events counted are the usage lines'.
    @Test func productsCreditsAndDiscounts_readAsTheyShould() throws {
        var draft = CloseStagesTests.draft()
        draft.productId = "prd_1"
        draft.productName = "search-mcp"
        let grant = CreditGrant(
            id: "crg_1", tenantId: "ten_1", customerId: "cus_1", currency: "USD", amount: try Money(decimal: "1"),
            kind: .prepaid, priority: 0, grantedAt: CloseStagesTests.periodStart, expiresAt: nil,
            description: "starter")
        let discount = Discount(
            id: "dsc_1", tenantId: "ten_1", customerId: "cus_1", off: .percent(try Money(decimal: "10")),
            startsAt: CloseStagesTests.periodStart, endsAt: nil, createdAt: CloseStagesTests.periodStart)
        let invoice = try InvoiceClose.close(
            draft,
            charges: [
                CloseStagesTests.charge("search", cost: "0.75"), CloseStagesTests.charge("search", cost: "0.75"),
            ],
            facts: PeriodFacts(
                calendar: .monthlyUTC, credit: CreditWallet(grants: [grant]), discounts: [discount]))
        let text = InvoiceRendering.text(invoice)
        #expect(text.contains("Product search-mcp"), "\(text)")
        #expect(text.contains("prepaid credit crg_1 (starter)") && text.contains("-1.00"), "\(text)")
        #expect(text.contains("discount dsc_1: 10 % off") && text.contains("-0.05"), "\(text)")
        #expect(text.contains("Total: 0.45 USD"))
        let html = InvoiceRendering.html(invoice)
        #expect(html.contains("<span class=\"label\">Product</span> search-mcp"))
        #expect(html.contains("<tr class=\"credit\">") && html.contains("paid for 2 events"))
        #expect(invoice.json["events"] == 2 && invoice.json["product"] == "search-mcp")
        let back = try Invoice(json: invoice.json, tenantId: "ten_1")
        #expect(back.productName == "search-mcp" && back.lines.map(\.discountId).contains("dsc_1"))
        #expect(back.creditApplications == invoice.creditApplications)
    }

    /// Amounts print with exactly the currency's minor digits.
    @Test func amountsPrintWithTheCurrencysMinorDigits() {
        #expect(InvoiceRendering.money(Money(nanos: 2_500_000_000), "USD") == "2.50")
        #expect(InvoiceRendering.money(Money(nanos: 3_000_000_000), "USD") == "3.00")
        #expect(InvoiceRendering.money(Money(nanos: 300_000_000_000), "JPY") == "300")
        #expect(InvoiceRendering.money(Money(nanos: 1_234_000_000), "KWD") == "1.234")
        #expect(InvoiceRendering.money(Money(nanos: -10_000_000), "EUR") == "-0.01")
    }

    /// A row per line, RFC 4180: a description with a comma or quotes is quoted, its quotes doubled.
    @Test func csvHasARowPerLine_quotedWhereItMustBe() throws {
        let csv = InvoiceRendering.csv(try Self.invoice())
        let rows = csv.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        #expect(rows.count == 1 + 3)
        #expect(rows[0] == InvoiceRendering.csvColumns.joined(separator: ","))
        #expect(rows[2].contains(#",usage,"search, ""deep""","search, ""deep""",,,calls,1,"#), "\(rows[2])")
        #expect(rows[3].hasPrefix("inv_1,L3,tax,tax at 10 %,"))
        #expect(csv.hasSuffix("\r\n"))
    }

    /// A voided invoice says so in every form — when and why, the reason escaped in HTML — and reads back as void;
    /// only a finalized invoice can be voided.
    @Test func aVoidedInvoice_saysSoEverywhere_andReadsBack() throws {
        let issued = try Self.invoice()
        var draft = issued
        draft.status = .draft
        #expect(draft.voided(at: Date(), reason: "x") == nil, "a draft was never issued")
        var finalized = issued
        finalized.status = .finalized
        let at = Timestamp.parse("2026-12-02T10:00:00Z")!
        let voided = try #require(finalized.voided(at: at, reason: "wrong <b>customer</b>"))
        #expect(voided.voided(at: at, reason: "again") == nil, "a void invoice is not voided again")
        #expect(voided.lines == finalized.lines && voided.total == finalized.total)
        #expect(InvoiceRendering.text(voided).contains("VOID since 2026-12-02T10:00:00.000Z: wrong <b>customer</b>"))
        let html = InvoiceRendering.html(voided)
        #expect(html.contains("class=\"void\">VOID since") && html.contains("wrong &lt;b&gt;customer&lt;/b&gt;"))
        #expect(!InvoiceRendering.html(finalized).contains("class=\"void\""))
        let rows = InvoiceRendering.csv(voided).components(separatedBy: "\r\n").filter { !$0.isEmpty }
        #expect(rows.dropFirst().allSatisfy { $0.hasSuffix(",void") })
        let back = try Invoice(json: voided.json, tenantId: voided.tenantId)
        #expect(back.status == .void && back.voidedAt == at && back.voidReason == "wrong <b>customer</b>")
        #expect(back.json == voided.json)
    }

    /// The page names seller, customer and period, lists every line and the totals, and escapes what callers wrote
    /// (a customer's name cannot inject markup); it loads nothing from elsewhere.
    @Test func htmlIsEscapedSelfContainedAndComplete() throws {
        let invoice = try Self.invoice()
        let html = InvoiceRendering.html(invoice)
        #expect(html.contains("Acme MCP Tools") && html.contains("Kiwi &lt;script&gt;alert(&quot;x&quot;)"))
        #expect(!html.contains("<script>"))
        #expect(html.contains("search, &quot;deep&quot;") && html.contains("fetch"))
        #expect(html.contains(">1.50<") && html.contains(">0.25<") && html.contains(">0.18<"))
        #expect(html.contains("1.93 USD") && html.contains("2026-11-01T00:00:00.000Z"))
        #expect(!html.contains("http://") && !html.contains("https://") && !html.contains("src="))
        let text = InvoiceRendering.text(invoice)
        #expect(text.contains("Total: 1.93 USD") && text.contains("L3"))
    }
}
