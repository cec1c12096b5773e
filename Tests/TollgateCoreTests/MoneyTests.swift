import Foundation
import Testing

@testable import TollgateCore

@Suite struct MoneyTests {
    @Test(arguments: [
        ("0.1027", Int64(102_700_000)), ("1", 1_000_000_000), ("-3.5", -3_500_000_000), ("0.000000001", 1),
        ("12.000000000", 12_000_000_000), ("0", 0),
    ])
    func parse_acceptsPlainDecimals(text: String, nanos: Int64) throws {
        #expect(try Money(decimal: text).nanos == nanos)
    }

    @Test(arguments: ["", ".5", "5.", "1e3", "1.0000000001", "abc", "--1", "1.2.3", " 1", "+1", "0x10", "١"])
    func parse_refusesAnythingElse(text: String) {
        #expect(throws: MoneyError.self) { try Money(decimal: text) }
    }

    @Test func parse_refusesAmountsBeyondRange() {
        #expect(throws: MoneyError.overflow) { try Money(decimal: "9223372037") }
    }

    @Test func decimalString_isCanonical() throws {
        #expect(try Money(decimal: "0.1000").decimalString == "0.1")
        #expect(try Money(decimal: "-0.5").decimalString == "-0.5")
        #expect(Money(nanos: 1).decimalString == "0.000000001")
        #expect(Money.zero.decimalString == "0")
        #expect(Money(nanos: .max).decimalString == "9223372036.854775807")
        #expect(Money(nanos: .min).decimalString == "-9223372036.854775808")
        #expect(Money(nanos: -1_000_000_000).decimalString == "-1")
        #expect(Money(nanos: 120_000_000_000).decimalString == "120")
        #expect(Money(nanos: 1_000_000_010).decimalString == "1.00000001")
        // Every amount reads back as itself.
        for step in Int64(-5000)..<5000 {
            let money = Money(nanos: step &* 1_844_674_407_370_955)
            #expect(try Money(decimal: money.decimalString) == money, "\(money.nanos)")
        }
    }

    @Test func arithmetic_overflowIsAnErrorNeverAWrap() {
        #expect(throws: MoneyError.overflow) { try Money(nanos: .max).adding(Money(nanos: 1)) }
        #expect(throws: MoneyError.overflow) { try Money(nanos: .min).subtracting(Money(nanos: 1)) }
        #expect(throws: MoneyError.overflow) { try Money(nanos: .max / 2 + 1).multiplied(by: 2) }
    }

    @Test func dimensionExample_addsUpExactly() throws {
        // Seed 001, "Dimension 2": tool 0.10 + 2,400 input tokens × 0.000001 + 150 output tokens × 0.000002.
        let tool = try Money(decimal: "0.10")
        let input = try Money(decimal: "0.000001").multiplied(by: 2400)
        let output = try Money(decimal: "0.000002").multiplied(by: 150)
        #expect(try tool.adding(input).adding(output).decimalString == "0.1027")
    }
}

@Suite struct IdentifierTests {
    @Test func ids_haveTheirPrefixAndAreUnique() {
        let ids = (0..<10_000).map { _ in Identifiers.make(.receipt) }
        #expect(Set(ids).count == ids.count)
        #expect(ids.allSatisfy { $0.hasPrefix("rcp_") && $0.count == 28 })
        #expect(ids.allSatisfy { Identifiers.hasKind($0, .receipt) })
        // Every letter of the alphabet shows up in the random part: the bits are spread, not stuck.
        #expect(Set(ids.map { $0.suffix(14) }.joined().utf8).isSuperset(of: Identifiers.alphabet))
    }

    @Test func ids_sortByCreationTime() {
        let early = Identifiers.make(.receipt, at: Date(timeIntervalSince1970: 1_700_000_000))
        let later = Identifiers.make(.receipt, at: Date(timeIntervalSince1970: 1_700_000_000.001))
        let much = Identifiers.make(.receipt, at: Date(timeIntervalSince1970: 2_700_000_000))
        #expect(early < later && later < much)
    }

    @Test func idempotencyKeys_arePrintableASCIIUpTo128() {
        #expect(IdempotencyKey.isValid("order-42/retry 1"))
        #expect(!IdempotencyKey.isValid(""))
        #expect(!IdempotencyKey.isValid(String(repeating: "k", count: 129)))
        #expect(!IdempotencyKey.isValid("tab\t"))
        #expect(!IdempotencyKey.isValid("é"))
    }
}
