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
        let millis = millis(date)
        let (seconds, fraction) = (millis.quotientAndRemainder(dividingBy: 1000))
        let whole = fraction < 0 ? (seconds - 1, fraction + 1000) : (seconds, fraction)
        let text = Date(timeIntervalSince1970: Double(whole.0))
            .formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: false)
                .timeSeparator(.colon).timeZone(separator: .omitted))
        return text.dropLast() + "." + String(1000 + whole.1).dropFirst() + "Z"
    }

    public static func parse(_ text: String) -> Date? {
        if let date = try? Date(text, strategy: .iso8601.year().month().day().dateSeparator(.dash)
            .time(includingFractionalSeconds: true).timeSeparator(.colon).timeZone(separator: .omitted)) {
            return date
        }
        return try? Date(text, strategy: .iso8601)
    }

    /// Whole milliseconds since 1970 (how times are stored), rounded down. A time within a microsecond below a millisecond boundary
    /// counts as that boundary: `date(millis:)` goes through a `Double` and may land a hair short of it, and
    /// `millis(date(millis: m))` must give `m` back.
    public static func millis(_ date: Date) -> Int64 {
        let exact = date.timeIntervalSince1970 * 1000
        let nearest = exact.rounded()
        return Int64(abs(exact - nearest) < 0.001 ? nearest : exact.rounded(.down))
    }
    public static func date(millis: Int64) -> Date { Date(timeIntervalSince1970: Double(millis) / 1000) }
}
