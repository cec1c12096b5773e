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
