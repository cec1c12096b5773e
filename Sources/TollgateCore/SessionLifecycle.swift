import Foundation

/// Where a session is in its life. CREATED → ACTIVE (first call) → IDLE (no call for `idleAfter`) → ACTIVE
/// again on a call, or CLOSED (explicitly, or after `sessionTimeout` without a call).
public enum SessionState: String, Sendable, Hashable, CaseIterable {
    case created = "CREATED"
    case active = "ACTIVE"
    case idle = "IDLE"
    case closed = "CLOSED"
}

/// A call's outcome as its caller reported it (`usage.status`).
public enum CallStatus {
    /// A call failed when its status is present and anything but `SUCCESS`. One definition for error rates,
    /// session records and the SQL that sums errors (`status IS NOT NULL AND status <> 'SUCCESS'`).
    public static func isError(_ status: String?) -> Bool { status.map { $0 != "SUCCESS" } ?? false }
}

/// How a session ended.
public enum SessionOutcome: String, Sendable, Hashable {
    case completed = "COMPLETED"
    case failed = "FAILED"
    /// Closed by the server after `sessionTimeout` without a call.
    case timedOut = "TIMED_OUT"
}

/// The two durations that drive a session's life, configurable per tenant.
public struct SessionTimeouts: Sendable, Hashable {
    /// Without a call for this long, an ACTIVE session becomes IDLE (default 60 s).
    public var idleAfter: TimeInterval
    /// Without a call for this long, a session is closed (default 1 h).
    public var sessionTimeout: TimeInterval
    public init(idleAfter: TimeInterval = 60, sessionTimeout: TimeInterval = 3600) {
        self.idleAfter = idleAfter
        self.sessionTimeout = sessionTimeout
    }
}

/// A session's lifecycle as a pure state machine: no clock, no I/O. Every step is given the time, so tests
/// drive it with any clock and the server with its own.
public struct SessionLifecycle: Sendable, Hashable {
    public private(set) var state: SessionState = .created
    public let openedAt: Date
    /// The last call, or nil before the first.
    public private(set) var lastActivityAt: Date?
    public private(set) var closedAt: Date?
    public private(set) var outcome: SessionOutcome?

    public enum Refusal: Error, Sendable, Equatable {
        /// The session is closed: no more calls, no second close.
        case closed
    }

    public init(openedAt: Date) { self.openedAt = openedAt }

    /// Rebuilds a lifecycle from what storage holds (after a restart).
    public init(openedAt: Date, lastActivityAt: Date?, closedAt: Date?, outcome: SessionOutcome?) {
        self.openedAt = openedAt
        self.lastActivityAt = lastActivityAt
        self.closedAt = closedAt
        self.outcome = outcome
        state = closedAt != nil ? .closed : (lastActivityAt == nil ? .created : .active)
    }

    /// The time idleness is measured from.
    private var quietSince: Date { lastActivityAt ?? openedAt }

    /// A call at `now`: CREATED or IDLE becomes ACTIVE. A closed session refuses it.
    public mutating func recordCall(at now: Date, timeouts: SessionTimeouts) throws(Refusal) {
        advance(to: now, timeouts: timeouts)
        guard state != .closed else { throw .closed }
        state = .active
        if lastActivityAt.map({ now > $0 }) ?? true { lastActivityAt = now }
    }

    /// An explicit close at `now` with the caller's outcome.
    public mutating func close(at now: Date, outcome: SessionOutcome, timeouts: SessionTimeouts) throws(Refusal) {
        advance(to: now, timeouts: timeouts)
        guard state != .closed else { throw .closed }
        state = .closed
        closedAt = now
        self.outcome = outcome
    }

    /// Lets time pass: ACTIVE becomes IDLE after `idleAfter` without a call, and any open session closes
    /// (outcome TIMED_OUT) once `sessionTimeout` has passed without one. A timed-out session's `closedAt` is
    /// the moment the timeout elapsed, not the moment somebody noticed, so the record is the same however
    /// late the sweep runs. Returns whether the state changed.
    @discardableResult
    public mutating func advance(to now: Date, timeouts: SessionTimeouts) -> Bool {
        guard state != .closed else { return false }
        let timeoutAt = quietSince.addingTimeInterval(timeouts.sessionTimeout)
        if now >= timeoutAt {
            state = .closed
            closedAt = timeoutAt
            outcome = .timedOut
            return true
        }
        if state == .active, now >= quietSince.addingTimeInterval(timeouts.idleAfter) {
            state = .idle
            return true
        }
        return false
    }

    /// When the session times out if no call comes first, or nil once closed.
    public func timesOutAt(_ timeouts: SessionTimeouts) -> Date? {
        state == .closed ? nil : quietSince.addingTimeInterval(timeouts.sessionTimeout)
    }

    /// When `advance` will next change something, or nil once closed.
    public func nextChange(timeouts: SessionTimeouts) -> Date? {
        switch state {
        case .closed: return nil
        case .active: return quietSince.addingTimeInterval(min(timeouts.idleAfter, timeouts.sessionTimeout))
        case .created, .idle: return quietSince.addingTimeInterval(timeouts.sessionTimeout)
        }
    }
}
