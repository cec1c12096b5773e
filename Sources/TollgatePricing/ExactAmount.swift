import TollgateCore

/// A decimal factor (a markup, a multiplier, a discount) with up to 9 fractional digits, held as an integer
/// count of billionths so that arithmetic with it stays exact.
public struct Factor: Sendable, Hashable, Comparable {
    /// The factor × 10⁹.
    public let billionths: Int64
    public static let one = Factor(billionths: 1_000_000_000)

    public init(billionths: Int64) { self.billionths = billionths }

    /// Parses a decimal string such as `"1.5"` or `"0.000001"` (the same grammar as money amounts).
    public init(decimal text: String) throws(MoneyError) {
        billionths = try Money(decimal: text).nanos
    }

    public var decimalString: String { Money(nanos: billionths).decimalString }
    public static func < (lhs: Factor, rhs: Factor) -> Bool { lhs.billionths < rhs.billionths }
}

/// An exact sum of money with 9 extra fractional digits below the nano-unit: a money amount times a factor is
/// exact in it. Strategies that multiply (markups, multipliers, discounts, committed unit
/// prices) accumulate in this and round once, half-even, when a total is read, so that a total never
/// depends on how its events were split or ordered.
public struct ExactAmount: Sendable, Hashable, Comparable {
    /// The amount in units of 10⁻⁹ nano-units.
    public private(set) var value: Int128
    static let scale: Int128 = 1_000_000_000

    public static let zero = ExactAmount(value: 0)
    init(value: Int128) { self.value = value }

    public init(_ money: Money) { value = Int128(money.nanos) * Self.scale }

    /// `money × factor`, exactly; throws when the product leaves the range.
    public init(_ money: Money, times factor: Factor) throws(MoneyError) {
        let (product, overflow) = Int128(money.nanos).multipliedReportingOverflow(by: Int128(factor.billionths))
        guard !overflow else { throw .overflow }
        value = product
    }

    /// `money × numerator ÷ denominator` rounded half-even to the nano-unit: a committed amount spread over
    /// its included units.
    public static func share(of money: Money, _ numerator: Int64, per denominator: Int64) throws(MoneyError) -> Money {
        precondition(denominator > 0)
        let nanos = divideHalfEven(Int128(money.nanos) * Int128(numerator), by: Int128(denominator))
        guard let exact = Int64(exactly: nanos) else { throw .overflow }
        return Money(nanos: exact)
    }

    public func adding(_ other: ExactAmount) throws(MoneyError) -> ExactAmount {
        let (sum, overflow) = value.addingReportingOverflow(other.value)
        guard !overflow else { throw .overflow }
        return ExactAmount(value: sum)
    }

    public func subtracting(_ other: ExactAmount) throws(MoneyError) -> ExactAmount {
        let (difference, overflow) = value.subtractingReportingOverflow(other.value)
        guard !overflow else { throw .overflow }
        return ExactAmount(value: difference)
    }

    public static func < (lhs: ExactAmount, rhs: ExactAmount) -> Bool { lhs.value < rhs.value }

    /// `self × factor`, rounded half-even back to 9 digits below the nano-unit.
    public func times(_ factor: Factor) throws(MoneyError) -> ExactAmount {
        let (product, overflow) = value.multipliedReportingOverflow(by: Int128(factor.billionths))
        guard !overflow else { throw .overflow }
        return ExactAmount(value: Self.divideHalfEven(product, by: 1_000_000_000))
    }

    /// Rounded half-even to the nano-unit; throws when the result does not fit in `Money`.
    public func rounded() throws(MoneyError) -> Money {
        let nanos = Self.divideHalfEven(value, by: Self.scale)
        guard let exact = Int64(exactly: nanos) else { throw .overflow }
        return Money(nanos: exact)
    }

    /// `numerator / denominator`, rounded half-even (to the nearest; a tie to the even quotient).
    public static func divideHalfEven(_ numerator: Int128, by denominator: Int128) -> Int128 {
        var quotient = numerator / denominator
        let remainder = numerator % denominator
        let twice = remainder.magnitude * 2
        if twice > denominator.magnitude || (twice == denominator.magnitude && quotient % 2 != 0) {
            quotient += (numerator < 0) == (denominator < 0) ? 1 : -1
        }
        return quotient
    }
}
