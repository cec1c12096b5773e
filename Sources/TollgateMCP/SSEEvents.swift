/// Splits a `text/event-stream` body into its events as bytes arrive, keeping each event's bytes exactly as
/// received, so that the HTTP proxy can relay them unchanged and still read the JSON-RPC message each carries.
/// An event ends at a blank line; its `data:` lines, joined by newlines, are its data (the SSE rules).
struct SSEEvents: Sendable {
    struct Event: Sendable, Equatable {
        /// The event's bytes as received, its terminating blank line included.
        var raw: [UInt8]
        /// Its `data:` lines joined by newlines; nil for an event without data (a comment, a retry hint).
        var data: [UInt8]?
    }

    private var pending: [UInt8] = []
    /// Where the current event starts in `pending`, and where the scan for line ends resumes.
    private var scanned = 0
    private var lineStart = 0
    private var data: [UInt8]?

    /// The events completed by `bytes`.
    mutating func feed(_ bytes: some Sequence<UInt8>) -> [Event] {
        pending.append(contentsOf: bytes)
        var events: [Event] = []
        while scanned < pending.count {
            let byte = pending[scanned]
            scanned += 1
            guard byte == 0x0A else { continue }
            // A line ended at `scanned - 1` (a CR before the LF is part of the line end).
            var end = scanned - 1
            if end > lineStart, pending[end - 1] == 0x0D { end -= 1 }
            let line = pending[lineStart..<end]
            lineStart = scanned
            if line.isEmpty {
                events.append(Event(raw: Array(pending[0..<scanned]), data: data))
                pending.removeFirst(scanned)
                scanned = 0
                lineStart = 0
                data = nil
                continue
            }
            let field: ArraySlice<UInt8>
            var value: ArraySlice<UInt8>
            if let colon = line.firstIndex(of: 0x3A) {
                field = line[line.startIndex..<colon]
                value = line[(colon + 1)...]
                if value.first == 0x20 { value = value.dropFirst() }
            } else {
                field = line
                value = []
            }
            if field.elementsEqual("data".utf8) {
                if data == nil { data = [] } else { data!.append(0x0A) }
                data!.append(contentsOf: value)
            }
        }
        return events
    }

    /// What is left when the stream ends: an event the stream did not finish, relayed as it came.
    var remainder: [UInt8] { pending }

    /// True when no event is half received: a comment can be sent to the client without splitting one.
    var isBetweenEvents: Bool { pending.isEmpty }

    /// `raw` (one whole event) with its data replaced by `data`: its other lines (`id:`, `event:`, `retry:`,
    /// comments) kept as they came and in order, the new `data:` lines where the first old one was.
    static func replacingData(of raw: [UInt8], with data: [UInt8]) -> [UInt8] {
        var newData: [UInt8] = []
        for line in data.split(separator: 0x0A, omittingEmptySubsequences: false) {
            newData += Array("data: ".utf8) + line + [0x0A]
        }
        var out: [UInt8] = []
        var placed = false
        // The event's lines, without its final blank line.
        var lines = raw.split(separator: 0x0A, omittingEmptySubsequences: false)
        while let last = lines.last, last.isEmpty || last == [0x0D] { lines.removeLast() }
        for line in lines {
            let content = line.last == 0x0D ? line.dropLast() : line
            let name = content.firstIndex(of: 0x3A).map { content[content.startIndex..<$0] } ?? content
            if name.elementsEqual("data".utf8) {
                if !placed { out += newData }
                placed = true
            } else {
                out += Array(line) + [0x0A]
            }
        }
        if !placed { out += newData }
        return out + [0x0A]
    }
}
