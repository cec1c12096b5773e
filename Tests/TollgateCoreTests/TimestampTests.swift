import Foundation
import Testing

@testable import TollgateCore

@Suite struct TimestampTests {
    @Test func timestamps_areRFC3339UTCWithMilliseconds() throws {
        let date = Date(timeIntervalSince1970: 1_774_967_219.045)
        #expect(Timestamp.format(date) == "2026-03-31T14:26:59.045Z")
        let parsed = try #require(Timestamp.parse("2026-03-31T14:26:59.045Z"))
        #expect(Timestamp.millis(parsed) == 1_774_967_219_045)
        #expect(Timestamp.parse("2026-03-31T14:26:59Z") != nil)
        #expect(Timestamp.parse("yesterday") == nil)
    }

    @Test func millisecondsRoundTripThroughDate() {
        for millis: Int64 in [0, 1, 999, 1_795_000_000_123, 1_795_000_000_999, 1_798_761_599_999] {
            #expect(Timestamp.millis(Timestamp.date(millis: millis)) == millis)
        }
        var mismatches = 0
        for millis in stride(from: Int64(1_795_000_000_000), to: 1_795_000_010_000, by: 1)
        where Timestamp.millis(Timestamp.date(millis: millis)) != millis { mismatches += 1 }
        #expect(mismatches == 0)
    }
}

@Suite struct TimestampFormatTests {
    @Test func formatNamesTheSameMillisecondAsMillis_evenJustBelowTheNext() throws {
        let base = 1_795_000_000.123
        for offset in [0.0, 0.0004, 0.0005, 0.0006, 0.00099, 0.000999] {
            let date = Date(timeIntervalSince1970: base + offset)
            let text = Timestamp.format(date)
            let parsed = try #require(Timestamp.parse(text))
            #expect(Timestamp.millis(parsed) == Timestamp.millis(date), "\(offset): \(text)")
        }
        #expect(Timestamp.format(Date(timeIntervalSince1970: 1_795_000_000.0999)) == "2026-11-18T11:06:40.099Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: -0.5)) == "1969-12-31T23:59:59.500Z")
    }

    /// The integer formatter agrees with Foundation's ISO 8601 formatter across leap years, century rules
    /// and both sides of 1970, and clamps what four digits of year cannot show. Foundation is asked for whole
    /// seconds only: through a `Double` its fraction can name the millisecond before.
    @Test func formatAgreesWithFoundationsFormatter() {
        let foundation = Date.ISO8601FormatStyle()
        var millis: [Int64] = [
            0, -1, 951_782_400_000, 951_868_799_999, 4_107_542_400_000, -2_203_891_200_001,
            Timestamp.maxFormattable,
        ]
        // 20,000 instants spread over years 1600–9999 (before 1582 Foundation may count in the Julian calendar).
        for step in Int64(0)..<20_000 {
            millis.append(-11_676_096_000_000 + step * 15_770_115_000_007 % 265_078_396_799_999)
        }
        var mismatches: [String] = []
        for value in millis {
            let (seconds, fraction) = Timestamp.floorDivision(value, 1000)
            let whole = foundation.format(Date(timeIntervalSince1970: Double(seconds)))
            let expected = whole.dropLast() + "." + String(1000 + fraction).dropFirst() + "Z"
            if Timestamp.format(millis: value) != expected { mismatches.append("\(value): \(expected)") }
        }
        #expect(mismatches.count == 0, "first: \(mismatches.first ?? "")")
        #expect(Timestamp.format(millis: Int64.max) == "9999-12-31T23:59:59.999Z")
        #expect(Timestamp.format(millis: Int64.min) == "0000-01-01T00:00:00.000Z")
    }
}

@Suite struct TimestampParseTests {
    /// For valid times, the integer reader gives the second Foundation's parser gives, UTC and offsets, over leap
    /// years, century years and both sides of 1970; and a fraction adds exactly its milliseconds (Foundation's own
    /// fraction can name the millisecond before: it reads 6331-08-03T08:16:52.045Z as …52.044983).
    @Test func validTimesReadAsFoundationReadsThem() throws {
        var generator = SplitMix64(seed: 11)
        var mismatches: [String] = []
        let fractions: [(text: String, millis: Int64)] = [
            // A time within a microsecond of the next millisecond counts as that one (`Timestamp.millis`).
            ("", 0), (".5", 500), (".045", 45), (".123456", 123), (".999", 999), (".999999999", 1000),
        ]
        let offsets = ["Z", "+00:00", "+05:30", "-08:00", "+14:00", "-12:45"]
        for _ in 0..<5_000 {
            // 1900 to 2199: further out, a `Double` of seconds no longer holds a microsecond.
            let seconds = Int64.random(in: -2_208_988_800...7_258_118_399, using: &generator)
            let whole = String(Timestamp.format(millis: seconds * 1000).prefix(19))
            let offset = offsets.randomElement(using: &generator)!
            let fraction = fractions.randomElement(using: &generator)!
            let theirs = try? Date(whole + offset, strategy: .iso8601)
            guard let ours = Timestamp.parse(whole + fraction.text + offset), let theirs,
                Timestamp.millis(ours) == Timestamp.millis(theirs) + fraction.millis
            else {
                mismatches.append(whole + fraction.text + offset)
                continue
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count), first: \(mismatches.first ?? "")")
        #expect(Timestamp.parse("2026-12-01T10:00:00.000+01:00") == Timestamp.parse("2026-12-01T09:00:00Z"))
    }

    /// A day outside its month, an hour past 23, a leap second, a malformed field or anything after the offset:
    /// not a time. (Foundation's parser, used before, read the first four as a later time and ignored the last.)
    @Test func impossibleOrMalformedTimesAreNotTimes() {
        for text in [
            "2026-02-29T00:00:00Z", "2025-04-31T00:00:00Z", "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z",
            "2026-12-01T24:00:00Z", "2026-12-01T10:60:00Z", "2026-12-01T10:00:00", "2026-12-01T10:00:00.Z",
            "2026-12-01 10:00:00Z", "2026-12-01T10:00:00+01:00x", "2026-12-01T10:00:00+0100", "2026-12-31T23:59:60Z",
            "２026-12-01T10:00:00Z", "2026-12-01T10:00:00Zjunk", "",
        ] {
            #expect(Timestamp.parse(text) == nil, "\(text)")
        }
        #expect(Timestamp.parse("2024-02-29T23:59:59.999Z") != nil)
        #expect(Timestamp.parse("2000-02-29T00:00:00Z") != nil)
        #expect(
            Timestamp.parse("2026-12-01t10:00:00.1234567891234z") == Timestamp.parse("2026-12-01T10:00:00.123456789Z"))
        #expect(Timestamp.parse("1900-02-29T00:00:00Z") == nil)
    }
}
