import Testing

@testable import TollgateMCP

/// The HTTP proxy reads each SSE event's message and relays the event's bytes as they came; these pin down where
/// events end and what their data is, whatever the chunks the bytes arrive in.
struct SSEEventsTests {
    let stream = Array(
        """
        : a comment first\r
        \r
        event: message\r
        id: 7\r
        data: {"jsonrpc":"2.0",\r
        data: "id":1}\r
        \r
        retry: 500

        data

        data: {"jsonrpc":"2.0","id":2,"result":{}}

        data: unfinished
        """.utf8)

    @Test func eventsEndAtABlankLine_andKeepTheirBytes() {
        var reader = SSEEvents()
        let events = reader.feed(stream)
        #expect(
            events.map(\.data) == [
                nil, Array("{\"jsonrpc\":\"2.0\",\n\"id\":1}".utf8), nil, [],
                Array(#"{"jsonrpc":"2.0","id":2,"result":{}}"#.utf8),
            ])
        // Nothing added, nothing lost: the events and what is left are the stream.
        #expect(events.flatMap(\.raw) + reader.remainder == stream)
        #expect(reader.remainder == Array("data: unfinished".utf8))
        #expect(!reader.isBetweenEvents)
    }

    @Test(arguments: [1, 2, 3, 5, 8, 13, 64])
    func chunkBoundariesChangeNothing(size: Int) {
        var whole = SSEEvents()
        let expected = whole.feed(stream)
        var reader = SSEEvents()
        var events: [SSEEvents.Event] = []
        var index = 0
        while index < stream.count {
            events += reader.feed(stream[index..<min(index + size, stream.count)])
            index += size
        }
        #expect(events == expected)
        #expect(reader.remainder == whole.remainder)
    }

    @Test func aCRLFSplitBetweenChunks_endsTheLineOnce() {
        var reader = SSEEvents()
        #expect(reader.feed(Array("data: x\r".utf8)).isEmpty)
        #expect(reader.feed(Array("\n\r".utf8)).isEmpty)
        let events = reader.feed(Array("\n".utf8))
        #expect(events.map(\.data) == [Array("x".utf8)])
        #expect(reader.isBetweenEvents)
    }

    @Test func replacingData_keepsTheEventsOtherFields() {
        let raw = Array("event: message\r\nid: 42\r\ndata: {\"a\":1}\r\n: note\r\n\r\n".utf8)
        let replaced = SSEEvents.replacingData(of: raw, with: Array(#"{"a":2}"#.utf8))
        #expect(
            String(decoding: replaced, as: UTF8.self) == "event: message\r\nid: 42\r\ndata: {\"a\":2}\n: note\r\n\n")
        var reader = SSEEvents()
        #expect(reader.feed(replaced).map(\.data) == [Array(#"{"a":2}"#.utf8)])
        // Data over several lines is sent as several data lines, and reads back the same.
        let multi = SSEEvents.replacingData(of: Array("data: x\n\n".utf8), with: Array("1\n2".utf8))
        #expect(reader.feed(multi).map(\.data) == [Array("1\n2".utf8)])
    }
}
