import Foundation

/// The timestamp gate: an event from too far in the future (a wrong clock) or too long ago (beyond what can still
/// be billed) is refused. Both bounds are configurable.
public struct TimestampGate: Sendable, Hashable {
    /// How far ahead of the server's clock an event may be (default 5 min).
    public var futureToleranceMs: Int64
    /// How old an event may be (default 90 days).
    public var maxAgeMs: Int64

    public init(futureToleranceMs: Int64 = 300_000, maxAgeMs: Int64 = 90 * 86_400_000) {
        self.futureToleranceMs = futureToleranceMs
        self.maxAgeMs = maxAgeMs
    }

    public func check(_ occurredAt: Date, now: Date) -> EventRejection? {
        let aheadMs = (occurredAt.timeIntervalSince(now) * 1000).rounded()
        if aheadMs > Double(futureToleranceMs) {
            return EventRejection(
                "TOO_FAR_IN_FUTURE", field: "occurredAt",
                "occurredAt is more than \(futureToleranceMs / 1000) s ahead of the server's clock")
        }
        if -aheadMs > Double(maxAgeMs) {
            return EventRejection(
                "TOO_OLD", field: "occurredAt", "occurredAt is more than \(maxAgeMs / 86_400_000) days ago")
        }
        return nil
    }
}

/// The lateness gate: an event older than `lateAfterMs` (default 24 h) is accepted but flagged `late`; one whose
/// billing period is already closed is held for the next invoice as an adjustment — never dropped, and never
/// added to the closed period.
public struct LatenessGate: Sendable, Hashable {
    public enum Verdict: Sendable, Hashable {
        case onTime
        case late
        /// Late, and its period closed at `periodClosedAt`: recorded as an adjustment on the next invoice.
        case adjustment
    }

    public var lateAfterMs: Int64

    public init(lateAfterMs: Int64 = 86_400_000) {
        self.lateAfterMs = lateAfterMs
    }

    /// - Parameter closedThrough: the end of the customer's last closed billing period, if any: an event that
    ///   occurred before it belongs to a period that can no longer change.
    public func check(_ occurredAt: Date, now: Date, closedThrough: Date? = nil) -> Verdict {
        if let closedThrough, occurredAt < closedThrough { return .adjustment }
        return now.timeIntervalSince(occurredAt) * 1000 > Double(lateAfterMs) ? .late : .onTime
    }
}
