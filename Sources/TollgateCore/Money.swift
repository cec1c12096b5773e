/// An exact amount of money in nano-units (10⁻⁹) of a currency.
///
/// Money never touches floating point: it is an `Int64` count of nano-units, every operation is checked,
/// and an overflow is an error (`MoneyError.overflow`), never a wrap. The currency travels beside the amount
/// (a plan's ISO 4217 code) rather than inside it, because every amount in one rating belongs to one plan.
/// The largest representable amount is about 9.2 billion currency units.
public struct Money: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Nano-units of the currency: `1_000_000_000` is one whole unit.
    public let nanos: Int64

    public static let nanosPerUnit: Int64 = 1_000_000_000
    /// The wire allows at most this many fractional digits.
    public static let fractionDigitsMax = 9
    public static let zero = Money(nanos: 0)

    public init(nanos: Int64) { self.nanos = nanos }

    /// Parses a decimal string such as `"0.1027"`, `"-3"` or `"12.000000001"`.
    /// Refuses exponents, more than nine fractional digits, and anything that is not a plain decimal.
    public init(decimal text: String) throws(MoneyError) {
        var digits = Substring(text)
        var negative = false
        if digits.first == "-" {
            negative = true
            digits = digits.dropFirst()
        }
        let parts = digits.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, let whole = parts.first, !whole.isEmpty,
            whole.allSatisfy({ $0.isASCII && $0.isNumber })
        else { throw .malformed(text) }
        var fraction = parts.count == 2 ? parts[1] : ""
        guard parts.count == 1 || !fraction.isEmpty else { throw .malformed(text) }
        guard fraction.allSatisfy({ $0.isASCII && $0.isNumber }) else { throw .malformed(text) }
        guard fraction.count <= Money.fractionDigitsMax else { throw .tooPrecise(text) }
        fraction += String(repeating: "0", count: Money.fractionDigitsMax - fraction.count)
        guard let units = Int64(whole), let nanos = Int64(fraction) else { throw .overflow }
        let (scaled, o1) = units.multipliedReportingOverflow(by: Money.nanosPerUnit)
        let (sum, o2) = scaled.addingReportingOverflow(nanos)
        guard !o1, !o2 else { throw .overflow }
        self.nanos = negative ? -sum : sum
    }

    /// The canonical decimal form: no exponent, trailing fractional zeros removed, at least one digit.
    public var decimalString: String {
        // Written right to left into a stack buffer: every receipt carries two or more amounts.
        // 20 digits of whole units at most, a point, 9 fraction digits and a sign: 31 bytes.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { buffer in
            var end = buffer.count
            func put(_ byte: UInt8) {
                end -= 1
                buffer[end] = byte
            }
            let magnitude = nanos.magnitude
            var whole = magnitude / UInt64(Money.nanosPerUnit)
            var fraction = magnitude % UInt64(Money.nanosPerUnit)
            if fraction != 0 {
                var digits = Money.fractionDigitsMax
                while fraction % 10 == 0 {
                    fraction /= 10
                    digits -= 1
                }
                for _ in 0..<digits {
                    put(UInt8(48 + fraction % 10))
                    fraction /= 10
                }
                put(UInt8(ascii: "."))
            }
            repeat {
                put(UInt8(48 + whole % 10))
                whole /= 10
            } while whole > 0
            if nanos < 0 { put(UInt8(ascii: "-")) }
            return String(decoding: UnsafeBufferPointer(rebasing: buffer[end...]), as: UTF8.self)
        }
    }

    public var description: String { decimalString }

    public static func < (lhs: Money, rhs: Money) -> Bool { lhs.nanos < rhs.nanos }

    public func adding(_ other: Money) throws(MoneyError) -> Money {
        let (sum, overflow) = nanos.addingReportingOverflow(other.nanos)
        guard !overflow else { throw .overflow }
        return Money(nanos: sum)
    }

    public func subtracting(_ other: Money) throws(MoneyError) -> Money {
        let (difference, overflow) = nanos.subtractingReportingOverflow(other.nanos)
        guard !overflow else { throw .overflow }
        return Money(nanos: difference)
    }

    /// Multiplies by a whole count (a quantity of calls or units).
    public func multiplied(by count: Int64) throws(MoneyError) -> Money {
        let (product, overflow) = nanos.multipliedReportingOverflow(by: count)
        guard !overflow else { throw .overflow }
        return Money(nanos: product)
    }
}

public enum MoneyError: Error, Sendable, Equatable, CustomStringConvertible {
    case malformed(String)
    case tooPrecise(String)
    case overflow

    public var description: String {
        switch self {
        case .malformed(let text): "\"\(text)\" is not a decimal amount"
        case .tooPrecise(let text): "\"\(text)\" has more than \(Money.fractionDigitsMax) fractional digits"
        case .overflow: "amount out of range"
        }
    }
}
