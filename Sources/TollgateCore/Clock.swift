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

    /// An RFC 3339 time — `2026-12-01T10:00:00Z`, with or without a fraction, `Z` or an offset such as `+01:00` —
    /// or nil. Read by integer arithmetic, strictly: a day outside its month, an hour of 24, a leap second or a
    /// character after the offset is not a time (Foundation's parser rolled such dates over into the next month
    /// or ignored the rest, which would have let `2026-02-30` stand for 2 March); and every event of a batch carries
    /// one, where Foundation's parser cost more than the rest of the event's gates.
    public static func parse(_ text: String) -> Date? {
        var text = text
        return text.withUTF8 { rfc3339($0) }
    }

    /// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, each field in its range (the day in its month, the hour below
    /// 24, no leap second), `T` and `Z` in either case; nil for anything else.
    static func rfc3339(_ bytes: UnsafeBufferPointer<UInt8>) -> Date? {
        guard bytes.count >= 20 else { return nil }
        func digits(_ offset: Int, _ count: Int) -> Int64? {
            var value: Int64 = 0
            for index in offset..<offset + count {
                let digit = bytes[index] &- 48
                guard digit < 10 else { return nil }
                value = value * 10 + Int64(digit)
            }
            return value
        }
        guard bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"), bytes[10] | 0x20 == UInt8(ascii: "t"),
            bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"),
            let year = digits(0, 4), let month = digits(5, 2), let day = digits(8, 2), let hour = digits(11, 2),
            let minute = digits(14, 2), let second = digits(17, 2),
            (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year), hour < 24, minute < 60,
            second < 60
        else { return nil }
        var index = 19
        var fraction = 0.0
        if bytes[index] == UInt8(ascii: ".") {
            index += 1
            let start = index
            while index < bytes.count, bytes[index] &- 48 < 10 { index += 1 }
            // Digits past the ninth (below a nanosecond) are read but do not count.
            let counted = min(index - start, 9)
            guard index > start, let value = digits(start, counted) else { return nil }
            fraction = Double(value) / pow(10, Double(counted))
        }
        guard index < bytes.count else { return nil }
        var offsetSeconds: Int64 = 0
        if bytes[index] | 0x20 == UInt8(ascii: "z") {
            index += 1
        } else {
            guard bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-"), index + 6 == bytes.count,
                bytes[index + 3] == UInt8(ascii: ":"), let hours = digits(index + 1, 2),
                let minutes = digits(index + 4, 2), hours < 24, minutes < 60
            else { return nil }
            offsetSeconds = (hours * 3600 + minutes * 60) * (bytes[index] == UInt8(ascii: "+") ? 1 : -1)
            index += 6
        }
        guard index == bytes.count else { return nil }
        let seconds =
            days(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds
        return Date(timeIntervalSince1970: Double(seconds) + fraction)
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date: `civil(daysSince1970:)` the other way round.
    static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let marchYear = month <= 2 ? year - 1 : year
        let era = floorDivision(marchYear, 400).0
        let yearOfEra = marchYear - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
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
