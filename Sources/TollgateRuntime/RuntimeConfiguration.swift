import Foundation
import TollgateCore
import TollgateIngest

/// The tenant runtime's limits: its keys and defaults, written once.
public struct RuntimeConfiguration: ComponentConfiguration {
    /// Recent idempotency keys per tenant kept in memory (older ones are looked up in storage).
    public var recentKeysMax = 100_000
    /// Longest credential lifetime an operator may issue, in seconds (366 days).
    public var credentialTTLSecondsMax = 31_622_400
    /// Open sessions a tenant may have at once.
    public var openSessionsMax = 100_000
    /// Closed sessions a tenant loads at start, to learn how long its agents' sessions last.
    public var closedSessionsLoadedMax = 1000
    /// Session idleness and timeout unless the tenant sets its own (`sessions.configure`), in milliseconds.
    public var sessionIdleAfterMs = 60_000
    public var sessionTimeoutMs = 3_600_000
    /// How often timed-out sessions are looked for and closed, in milliseconds.
    public var sessionSweepMs = 1000
    /// Longest a `meter.authorize` hold lasts before it expires, in milliseconds.
    public var reservationTTLMs = 300_000
    /// The velocity alert's and the margin guard's thresholds.
    public var guards = GuardLimits()
    /// `events.ingest`: how far ahead of the server's clock an event may be, how old it may be, and after how
    /// long it is `late`.
    public var eventFutureToleranceMs = 300_000
    public var eventMaxAgeDays = 90
    public var eventLateAfterMs = 86_400_000

    public init() {}

    /// The ingest gates these limits make (the plan's declared metrics are added per batch).
    public var eventGates: EventGates {
        EventGates(
            timestamp: TimestampGate(
                futureToleranceMs: Int64(eventFutureToleranceMs), maxAgeMs: Int64(eventMaxAgeDays) * 86_400_000),
            lateness: LatenessGate(lateAfterMs: Int64(eventLateAfterMs)))
    }

    /// The sessions' idleness and timeout as the session lifecycle takes them.
    public var sessionTimeouts: SessionTimeouts {
        SessionTimeouts(idleAfter: Double(sessionIdleAfterMs) / 1000, sessionTimeout: Double(sessionTimeoutMs) / 1000)
    }

    public static let settings: [Setting<Self>] = [
        Setting(
            "recentKeysMax", \.recentKeysMax,
            "idempotency keys per tenant kept in memory; older keys are still found in storage"),
        Setting(
            "credentialTTLSecondsMax", \.credentialTTLSecondsMax,
            "longest lifetime of an agent credential, in seconds"),
        Setting(
            "openSessionsMax", \.openSessionsMax,
            "open sessions per tenant; a call that would open one more is refused with CONFLICT"),
        Setting(
            "closedSessionsLoadedMax", \.closedSessionsLoadedMax,
            "closed sessions a tenant loads when it starts, to learn how long its agents' sessions last "
                + "(session.get's projectedCost)"),
        Setting(
            "sessionIdleAfterMs", \.sessionIdleAfterMs,
            "a session without a call for this long becomes IDLE; tenants may set their own with sessions.configure"),
        Setting(
            "sessionTimeoutMs", \.sessionTimeoutMs,
            "a session without a call for this long is closed and its final billing record written; tenants may "
                + "set their own"),
        Setting(
            "sessionSweepMs", \.sessionSweepMs,
            "how often timed-out sessions are looked for and closed, in milliseconds"),
        Setting(
            "reservationTTLMs", \.reservationTTLMs,
            "longest a meter.authorize hold lasts (and the default when the call names no ttlMs); then it expires "
                + "and its hold is released"),
        Setting(
            "velocityFactor", \.guards.velocityFactor,
            "a velocity alert fires when an agent's calls in the current minute exceed this many times its average "
                + "per minute over the trailing window"),
        Setting(
            "velocityWindowMinutes", \.guards.velocityWindowMinutes,
            "the trailing window of the velocity average, in whole minutes, 1 to 10080"),
        Setting(
            "velocityMinCallsPerMinute", \.guards.velocityMinCallsPerMinute,
            "no velocity alert below this many calls in the current minute"),
        Setting(
            "marginL1Percent", \.guards.marginL1Percent,
            "margin guard level 1 (alert): provider cost above this percentage of revenue for a session or a "
                + "customer's month; 0 turns it off"),
        Setting(
            "marginL2Percent", \.guards.marginL2Percent,
            "margin guard level 2 (alert and throttle to one call per marginThrottleMs, the rest RATE_LIMITED); 0 "
                + "turns it off"),
        Setting(
            "marginL3Percent", \.guards.marginL3Percent,
            "margin guard level 3 (alert and block with CONFLICT); 0 turns it off"),
        Setting(
            "marginThrottleMs", \.guards.marginThrottleMs,
            "at margin level 2, one call per this many milliseconds gets through"),
        Setting(
            "eventFutureToleranceMs", \.eventFutureToleranceMs,
            "events.ingest refuses an event whose occurredAt is further ahead of the server's clock than this "
                + "(TOO_FAR_IN_FUTURE)"),
        Setting(
            "eventMaxAgeDays", \.eventMaxAgeDays,
            "events.ingest refuses an event that occurred more than this many days ago (TOO_OLD); its id stays "
                + "taken at least this long"),
        Setting(
            "eventLateAfterMs", \.eventLateAfterMs,
            "an event ingested more than this long after it occurred is accepted and flagged late"),
    ]

    public func validate() throws(ConfigurationError) {
        typealias E = ConfigurationError
        try E.check(recentKeysMax >= 1, "recentKeysMax", "at least 1")
        try E.check(credentialTTLSecondsMax >= 60, "credentialTTLSecondsMax", "at least 60")
        try E.check(openSessionsMax >= 1, "openSessionsMax", "at least 1")
        try E.check(closedSessionsLoadedMax >= 0, "closedSessionsLoadedMax", "not negative")
        try E.check(sessionIdleAfterMs >= 1, "sessionIdleAfterMs", "at least 1")
        try E.check(sessionTimeoutMs >= sessionIdleAfterMs, "sessionTimeoutMs", "at least limits.sessionIdleAfterMs")
        try E.check(sessionSweepMs >= 1, "sessionSweepMs", "at least 1")
        try E.check(reservationTTLMs >= 1000, "reservationTTLMs", "at least 1000")
        try E.check(guards.velocityFactor >= 1, "velocityFactor", "at least 1")
        try E.check(
            (1...10_080).contains(guards.velocityWindowMinutes), "velocityWindowMinutes", "from 1 to 10080 (a week)")
        try E.check(guards.velocityMinCallsPerMinute >= 1, "velocityMinCallsPerMinute", "at least 1")
        for (name, value) in [
            ("marginL1Percent", guards.marginL1Percent), ("marginL2Percent", guards.marginL2Percent),
            ("marginL3Percent", guards.marginL3Percent),
        ] {
            try E.check(value >= 0, name, "0 (off) or a percentage")
        }
        try E.check(guards.marginThrottleMs >= 1, "marginThrottleMs", "at least 1")
        try E.check(eventFutureToleranceMs >= 0, "eventFutureToleranceMs", "not negative")
        try E.check((1...3650).contains(eventMaxAgeDays), "eventMaxAgeDays", "from 1 to 3650")
        try E.check(eventLateAfterMs >= 1, "eventLateAfterMs", "at least 1")
    }
}
