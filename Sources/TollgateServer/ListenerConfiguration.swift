import TollgateCore

/// The listener's and the connections' limits: their keys and defaults, written once.
public struct ListenerConfiguration: ComponentConfiguration {
    /// Largest frame body accepted, in bytes.
    public var frameBytesMax = 1_048_576
    /// Most requests in one JSON-RPC batch.
    public var batchMax = 1000
    /// Unanswered requests per connection before the server stops reading from it.
    public var inFlightMax = 1024
    /// Open connections; further ones are answered `UNAVAILABLE` and closed.
    public var connectionsMax = 4096
    /// Connections the kernel queues before the server accepts them (the listen backlog).
    public var backlog = 256
    /// A connection that has not authenticated and sends nothing for this long is closed, in milliseconds:
    /// sockets opened and left cannot hold `connectionsMax` forever.
    public var unauthenticatedIdleMs = 10_000
    /// The same for authenticated connections, which agents keep open between calls; 0 never closes them.
    public var idleMs = 0
    /// How long a graceful shutdown waits for in-flight requests, in milliseconds.
    public var drainTimeoutMs = 10_000
    /// Longest id or idempotency key a request may carry, in bytes; at least the 128 the protocol promises.
    public var idBytesMax = 128
    /// Failed `auth.hello` / `auth.token` attempts allowed per connection, and per source address, within
    /// `authFailureWindowMs`; further attempts are `RATE_LIMITED` until enough of them leave the window.
    public var authFailuresPerConnection = 5
    public var authFailuresPerAddress = 20
    public var authFailureWindowMs = 60_000

    public init() {}

    public static let settings: [Setting<Self>] = [
        Setting(
            "frameBytesMax", \.frameBytesMax,
            "largest frame body, in bytes; a bigger length header is refused with FRAME_TOO_LARGE before any body "
                + "is read"),
        Setting("batchMax", \.batchMax, "most requests in one JSON-RPC batch array; must not exceed inFlightMax"),
        Setting(
            "inFlightMax", \.inFlightMax,
            "unanswered requests per connection; at this many the server stops reading that connection until "
                + "answers go out"),
        Setting("connectionsMax", \.connectionsMax, "open connections; one more is answered UNAVAILABLE and closed"),
        Setting("listenBacklog", \.backlog, "connections the kernel queues before the server accepts them"),
        Setting(
            "unauthenticatedIdleMs", \.unauthenticatedIdleMs,
            "a connection that has not authenticated (auth.hello) and sends nothing for this long is closed, in "
                + "milliseconds, so that sockets opened and left cannot hold connectionsMax"),
        Setting(
            "idleMs", \.idleMs,
            "the same for authenticated connections, in milliseconds; 0 (the default) never closes them, since "
                + "agents keep one open between calls"),
        Setting(
            "drainTimeoutMs", \.drainTimeoutMs,
            "on SIGTERM/SIGINT, how long in-flight requests may take to be answered before connections are closed, "
                + "in milliseconds"),
        Setting(
            "idBytesMax", \.idBytesMax,
            "longest id or idempotency key a request may carry, in bytes; at least 128, which the protocol promises"),
        Setting(
            "authFailuresPerConnection", \.authFailuresPerConnection,
            "failed auth.hello or auth.token attempts on one connection within authFailureWindowMs before further "
                + "attempts on it are answered RATE_LIMITED"),
        Setting(
            "authFailuresPerAddress", \.authFailuresPerAddress,
            "the same for all connections from one source address"),
        Setting(
            "authFailureWindowMs", \.authFailureWindowMs,
            "the window failed authentications are counted in, in milliseconds"),
    ]

    public func validate() throws(ConfigurationError) {
        typealias E = ConfigurationError
        try E.check(
            (1024...Int(UInt32.max)).contains(frameBytesMax), "frameBytesMax",
            "from 1024 (room for any error answer) to 4294967295")
        try E.check(batchMax >= 1, "batchMax", "at least 1")
        try E.check(inFlightMax >= 1, "inFlightMax", "at least 1")
        try E.check(batchMax <= inFlightMax, "batchMax", "at most limits.inFlightMax, so one batch fits in flight")
        try E.check(connectionsMax >= 1, "connectionsMax", "at least 1")
        try E.check(backlog >= 1, "listenBacklog", "at least 1")
        try E.check(unauthenticatedIdleMs >= 100, "unauthenticatedIdleMs", "at least 100")
        try E.check(idleMs >= 0, "idleMs", "0 (never) or a number of milliseconds")
        try E.check(drainTimeoutMs >= 0, "drainTimeoutMs", "not negative")
        try E.check((128...1024).contains(idBytesMax), "idBytesMax", "from 128 (the protocol's promise) to 1024")
        try E.check(authFailuresPerConnection >= 1, "authFailuresPerConnection", "at least 1")
        try E.check(
            authFailuresPerAddress >= authFailuresPerConnection, "authFailuresPerAddress",
            "at least authFailuresPerConnection")
        try E.check(authFailureWindowMs >= 1, "authFailureWindowMs", "at least 1")
    }
}
