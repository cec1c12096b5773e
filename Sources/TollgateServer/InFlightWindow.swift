import Synchronization

/// Counts a connection's requests that have been read but not yet answered, so that the read loop can
/// stop reading at `inFlightMax` (back-pressure) and resume as answers go out.
final class InFlightWindow: Sendable {
    private let finished = Atomic<Int>(0)
    private let signal: AsyncStream<Void>.Continuation
    private let signals: AsyncStream<Void>
    let limit: Int

    init(limit: Int) {
        self.limit = limit
        // Only the latest wake-up matters: the waiter re-reads the counter after every one.
        (signals, signal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Called by the read loop (a single task) before it takes `count` more requests in flight.
    func acquire(_ count: Int, started: inout Int) async {
        var iterator = signals.makeAsyncIterator()
        while started - finished.load(ordering: .acquiring) + count > limit {
            _ = await iterator.next()
        }
        started += count
    }

    func release(_ count: Int = 1) {
        finished.add(count, ordering: .releasing)
        signal.yield()
    }

    /// Waits until every started request has finished.
    func drain(started: Int) async {
        var iterator = signals.makeAsyncIterator()
        while finished.load(ordering: .acquiring) < started { _ = await iterator.next() }
    }

    func close() { signal.finish() }
}
