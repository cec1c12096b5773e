import Synchronization

/// Failed attempts of one kind of key (a connection, a source address) within a sliding window: a pure value,
/// tested without a socket (`AuthThrottleTests`).
struct AuthFailures: Sendable {
    let limit: Int
    let windowMs: Int64
    /// Each key's failures, oldest first, as milliseconds.
    private var failures: [String: [Int64]] = [:]

    init(limit: Int, windowMs: Int64) {
        self.limit = limit
        self.windowMs = windowMs
    }

    /// How long `key` must wait before its next attempt at `now`, or nil when it may try now.
    mutating func retryAfterMs(_ key: String, now: Int64) -> Int64? {
        prune(key, now: now)
        guard let times = failures[key], times.count >= limit else { return nil }
        // Free again once enough of the failures have left the window.
        return max(1, times[times.count - limit] + windowMs - now)
    }

    mutating func record(_ key: String, now: Int64) {
        prune(key, now: now)
        failures[key, default: []].append(now)
        // Keys that went quiet are forgotten now and then, so that many addresses cannot grow this for ever.
        if failures.count > 10_000 {
            for stale in failures.keys { prune(stale, now: now) }
        }
    }

    private mutating func prune(_ key: String, now: Int64) {
        guard var times = failures[key] else { return }
        times.removeAll { $0 <= now - windowMs }
        failures[key] = times.isEmpty ? nil : times
    }
}

/// Limits the guessing of tokens and client secrets: once `auth.hello` or `auth.token` has failed
/// `authFailuresPerConnection` times on one connection, or `authFailuresPerAddress` times from one source
/// address, within `authFailureWindowMs`, further attempts from there are answered `RATE_LIMITED` (with
/// `retryAfterMs`) without being checked — a right token included, so that the limit cannot be used to learn
/// which one is right. Shared by every connection of the listener.
final class AuthThrottle: Sendable {
    private let state: Mutex<(connections: AuthFailures, addresses: AuthFailures)>

    init(_ limits: ListenerConfiguration) {
        let window = Int64(limits.authFailureWindowMs)
        state = Mutex(
            (
                AuthFailures(limit: limits.authFailuresPerConnection, windowMs: window),
                AuthFailures(limit: limits.authFailuresPerAddress, windowMs: window)
            ))
    }

    /// How long a connection (`connection`, from `address`) must wait before authenticating again; nil: now.
    func retryAfterMs(connection: String, address: String, now: Int64) -> Int64? {
        state.withLock { state in
            let byConnection = state.connections.retryAfterMs(connection, now: now)
            let byAddress = state.addresses.retryAfterMs(address, now: now)
            switch (byConnection, byAddress) {
            case (nil, nil): return nil
            case (let one?, nil), (nil, let one?): return one
            case (let one?, let other?): return max(one, other)
            }
        }
    }

    func failed(connection: String, address: String, now: Int64) {
        state.withLock { state in
            state.connections.record(connection, now: now)
            state.addresses.record(address, now: now)
        }
    }
}
