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
    public static func format(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: true)
            .timeSeparator(.colon).timeZone(separator: .omitted))
    }

    public static func parse(_ text: String) -> Date? {
        if let date = try? Date(text, strategy: .iso8601.year().month().day().dateSeparator(.dash)
            .time(includingFractionalSeconds: true).timeSeparator(.colon).timeZone(separator: .omitted)) {
            return date
        }
        return try? Date(text, strategy: .iso8601)
    }

    /// Milliseconds since the Unix epoch: how times are stored.
    /// Whole milliseconds since 1970, rounded down. A time within a microsecond below a millisecond boundary
    /// counts as that boundary: `date(millis:)` goes through a `Double` and may land a hair short of it, and
    /// `millis(date(millis: m))` must give `m` back.
    public static func millis(_ date: Date) -> Int64 {
        let exact = date.timeIntervalSince1970 * 1000
        let nearest = exact.rounded()
        return Int64(abs(exact - nearest) < 0.001 ? nearest : exact.rounded(.down))
    }
    public static func date(millis: Int64) -> Date { Date(timeIntervalSince1970: Double(millis) / 1000) }
}
