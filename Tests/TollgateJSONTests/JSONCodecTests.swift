import Foundation
import Testing

@testable import TollgateJSON

@Suite struct JSONCodecTests {
    @Test func parse_keepsIntegersExact() throws {
        #expect(try JSONCodec.parse("9007199254740993") == .integer(9_007_199_254_740_993))
        #expect(try JSONCodec.parse("-0") == .integer(0))
        #expect(try JSONCodec.parse("1.5") == .number(1.5))
        #expect(try JSONCodec.parse("1e2") == .number(100))
    }

    @Test func parse_readsEscapesAndSurrogatePairs() throws {
        #expect(try JSONCodec.parse(#""a\"b\\c\n\u00e9\ud83d\ude00""#) == .string("a\"b\\c\né😀"))
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\":1,}", "tru", "01", "1.", "\"\\x\"", "\"\u{01}\"", "{\"a\" 1}",
        "[1] x", "\"\\ud800\"", "{\"a\":1,\"a\":2}", "NaN", "-", "{1:2}",
    ])
    func parse_refusesMalformedDocuments(text: String) {
        #expect(throws: JSONParseError.self) { try JSONCodec.parse(text) }
    }

    @Test func parse_refusesInvalidUTF8() {
        #expect(throws: JSONParseError.self) { try JSONCodec.parse([0x22, 0xFF, 0x22]) }
    }

    @Test func parse_refusesNestingBeyondTheLimit() {
        let deep =
            String(repeating: "[", count: JSONCodec.depthMax + 1)
            + String(repeating: "]", count: JSONCodec.depthMax + 1)
        #expect(throws: JSONParseError.self) { try JSONCodec.parse(deep) }
        let ok = String(repeating: "[", count: JSONCodec.depthMax) + String(repeating: "]", count: JSONCodec.depthMax)
        #expect(throws: Never.self) { try JSONCodec.parse(ok) }
    }

    @Test func serialize_isCanonical_sortedKeysNoWhitespace() throws {
        let value = try JSONCodec.parse(#"{ "b": [1, true, null], "a": {"d": "x\ny", "c": -2} }"#)
        #expect(JSONCodec.string(value) == #"{"a":{"c":-2,"d":"x\ny"},"b":[1,true,null]}"#)
        #expect(try JSONCodec.parse(JSONCodec.string(value)) == value)
    }
}
