import Foundation

/// Where the domain gets "now" from. Production uses the system clock; tests step a manual one so that
/// periods, expiries and idle timeouts are exercised without sleeping.
public protocol WallClock: Sendable {
    func now() -> Date
}

public struct SystemWallClock: WallClock {
    public init() {}
    public func now() -> Date { Date() }
}

/// RFC 3339 UTC timestamps with milliseconds, the wire's only time format.
public enum Timestamp {
    /// The date's whole millisecond, as `millis` counts it (rounded down). The formatter's own fractional
    /// seconds round to the nearest millisecond, which would let a receipt's `at` name a later millisecond
    /// than the one its charge is stored and priced under; so the fraction is written from `millis` here.
    public static func format(_ date: Date) -> String {
        format(millis: millis(date))
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` from whole milliseconds since 1970, by integer arithmetic: every receipt
    /// carries one, and Foundation's formatter cost more than the rest of the receipt together. Years
    /// outside 0000–9999 are not representable in this form and are clamped to its ends.
    public static func format(millis: Int64) -> String {
        let clamped = min(max(millis, minFormattable), maxFormattable)
        let (days, millisOfDay) = floorDivision(clamped, 86_400_000)
        let (year, month, day) = civil(daysSince1970: days)
        return String(unsafeUninitializedCapacity: 24) { buffer in
            func put(_ value: Int64, digits: Int, at offset: Int) {
                var value = value
                for index in stride(from: offset + digits - 1, through: offset, by: -1) {
                    buffer[index] = UInt8(48 + value % 10)
                    value /= 10
                }
            }
            put(year, digits: 4, at: 0)
            buffer[4] = UInt8(ascii: "-")
            put(month, digits: 2, at: 5)
            buffer[7] = UInt8(ascii: "-")
            put(day, digits: 2, at: 8)
            buffer[10] = UInt8(ascii: "T")
            put(millisOfDay / 3_600_000, digits: 2, at: 11)
            buffer[13] = UInt8(ascii: ":")
            put(millisOfDay / 60_000 % 60, digits: 2, at: 14)
            buffer[16] = UInt8(ascii: ":")
            put(millisOfDay / 1000 % 60, digits: 2, at: 17)
            buffer[19] = UInt8(ascii: ".")
            put(millisOfDay % 1000, digits: 3, at: 20)
            buffer[23] = UInt8(ascii: "Z")
            return 24
        }
    }

    /// 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z.
    static let minFormattable: Int64 = -62_167_219_200_000
    static let maxFormattable: Int64 = 253_402_300_799_999

    static func floorDivision(_ value: Int64, _ divisor: Int64) -> (Int64, Int64) {
        let (quotient, remainder) = value.quotientAndRemainder(dividingBy: divisor)
        return remainder < 0 ? (quotient - 1, remainder + divisor) : (quotient, remainder)
    }

    /// The proleptic Gregorian date of a day number (days since 1970-01-01), after Howard Hinnant's
    /// `civil_from_days`: eras of 400 years, each starting on 1 March.
    static func civil(daysSince1970: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let shifted = daysSince1970 + 719_468
        let era = floorDivision(shifted, 146_097).0
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthFromMarch = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthFromMarch + 2) / 5 + 1
        let month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    public static func parse(_ text: String) -> Date? {
        if let date = try? Date(
            text,
            strategy: .iso8601.year().month().day().dateSeparator(.dash)
                .time(includingFractionalSeconds: true).timeSeparator(.colon).timeZone(separator: .omitted))
        {
            return date
        }
        return try? Date(text, strategy: .iso8601)
    }

    /// Whole milliseconds since 1970 (how times are stored), rounded down. A time within a microsecond below a
    /// millisecond boundary counts as that boundary: `date(millis:)` goes through a `Double` and may land a hair
    /// short of it, and `millis(date(millis: m))` must give `m` back.
    public static func millis(_ date: Date) -> Int64 {
        let exact = date.timeIntervalSince1970 * 1000
        let nearest = exact.rounded()
        return Int64(abs(exact - nearest) < 0.001 ? nearest : exact.rounded(.down))
    }
    public static func date(millis: Int64) -> Date { Date(timeIntervalSince1970: Double(millis) / 1000) }
}
