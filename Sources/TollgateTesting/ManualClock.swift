import Foundation
import Synchronization
import TollgateCore

/// A clock that moves only when a test says so: expiries, day and month boundaries without sleeping.
public final class ManualClock: WallClock, Sendable {
    private let current: Mutex<Date>
    /// How far every reading moves the clock on, in milliseconds: a clock that is never read twice at the same
    /// millisecond, as a busy server's is not, so that code reading it at two moments sees two times.
    private let stepPerReadMs: Int

    public init(_ start: Date = Date(timeIntervalSince1970: 1_795_000_000), stepPerReadMs: Int = 0) {
        current = Mutex(start)
        self.stepPerReadMs = stepPerReadMs
    }

    public func now() -> Date {
        current.withLock { now in
            defer { now = now.addingTimeInterval(Double(stepPerReadMs) / 1000) }
            return now
        }
    }

    public func advance(seconds: TimeInterval) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }

    public func set(_ date: Date) { current.withLock { $0 = date } }
}
