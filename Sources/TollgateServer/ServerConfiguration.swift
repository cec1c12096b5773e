import Configuration
import Foundation
import SystemPackage
import TollgateCore
import TollgatePostgres
import TollgateRuntime

/// Everything `tollgated` can be told, with the defaults it uses when told nothing. `Config/tollgate.json`
/// documents every key; a test checks that the file's values equal these defaults.
public struct ServerConfiguration: Sendable, Equatable {
    /// `host:port` to listen on. Port 0 picks a free port (tests).
    public var listen = "127.0.0.1:7420"
    /// `sqlite:PATH` (the default, a file in the working directory) or `postgres://user:pass@host:port/db`.
    public var storageURL = "sqlite:tollgate.sqlite"
    public var limits = Limits()

    /// Every named limit. Units are in the names.
    public struct Limits: Sendable, Equatable {
        /// Largest frame body accepted, in bytes.
        public var frameBytesMax = 1_048_576
        /// Most requests in one JSON-RPC batch.
        public var batchMax = 1000
        /// Unanswered requests per connection before the server stops reading from it.
        public var inFlightMax = 1024
        /// Open connections; further ones are answered `UNAVAILABLE` and closed.
        public var connectionsMax = 4096
        /// A connection that has not authenticated and sends nothing for this long is closed, in milliseconds:
        /// sockets opened and left cannot hold `connectionsMax` forever.
        public var unauthenticatedIdleMs = 10_000
        /// The same for authenticated connections, which agents keep open between calls; 0 never closes them.
        public var idleMs = 0
        /// How long `tollgated` keeps trying to reach its database at start before it exits with the reason.
        public var storageStartupTimeoutMs = 30_000
        /// Longest a request waits for the database (PostgreSQL) before it fails with `UNAVAILABLE`.
        public var storageTimeoutMs = 10_000
        /// Most charge records committed in one transaction.
        public var ledgerGroupEntriesMax = 1000
        /// Most charge records waiting for commit before calls are refused with `UNAVAILABLE`.
        public var ledgerQueueEntriesMax = 65_536
        /// Recent idempotency keys per tenant kept in memory; older keys are found in storage.
        public var recentKeysMax = 100_000
        /// Longest agent credential lifetime, in seconds.
        public var credentialTTLSecondsMax = 31_622_400
        /// How long a graceful shutdown waits for in-flight requests, in milliseconds.
        public var drainTimeoutMs = 10_000
        /// Open sessions per tenant.
        public var openSessionsMax = 100_000
        /// Default session idleness and timeout (a tenant may set its own with `sessions.configure`).
        public var sessionIdleAfterMs = 60_000
        public var sessionTimeoutMs = 3_600_000
        /// How often timed-out sessions are looked for and closed.
        public var sessionSweepMs = 1000
        /// Longest a `meter.authorize` hold lasts before it expires.
        public var reservationTTLMs = 300_000
        /// Velocity alert and margin guard thresholds (see `GuardLimits`).
        public var velocityFactor = 3
        public var velocityWindowMinutes = 60
        public var velocityMinCallsPerMinute = 10
        public var marginL1Percent = 100
        public var marginL2Percent = 125
        public var marginL3Percent = 150
        public var marginThrottleMs = 1000

        public init() {}
    }

    public init() {}

    /// Reads the JSON file at `filePath` (if given) under environment overrides (`TOLLGATE_LISTEN`,
    /// `TOLLGATE_STORAGE_URL`, `TOLLGATE_LIMITS_FRAME_BYTES_MAX`, …): environment first, then file, then default.
    public static func load(filePath: String?, environment: [String: String] = ProcessInfo.processInfo.environment)
        async throws -> ServerConfiguration
    {
        var providers: [any ConfigProvider] = [
            EnvironmentVariablesProvider(environmentVariables: environment).prefixKeys(with: "tollgate")
        ]
        if let filePath {
            do {
                providers.append(try await FileProvider<JSONSnapshot>(filePath: FilePath(filePath)))
            } catch {
                throw ConfigurationError.invalid(
                    key: "config file", rule: "a readable JSON file at \(filePath) (\(error))")
            }
        }
        let reader = ConfigReader(providers: providers)
        var config = ServerConfiguration()
        config.listen = reader.string(forKey: "listen", default: config.listen)
        config.storageURL = reader.string(forKey: "storage.url", default: config.storageURL)
        let limits = reader.scoped(to: "limits")
        func read(_ key: ConfigKey, _ value: inout Int) { value = limits.int(forKey: key, default: value) }
        read("frameBytesMax", &config.limits.frameBytesMax)
        read("batchMax", &config.limits.batchMax)
        read("inFlightMax", &config.limits.inFlightMax)
        read("connectionsMax", &config.limits.connectionsMax)
        read("unauthenticatedIdleMs", &config.limits.unauthenticatedIdleMs)
        read("idleMs", &config.limits.idleMs)
        read("storageStartupTimeoutMs", &config.limits.storageStartupTimeoutMs)
        read("storageTimeoutMs", &config.limits.storageTimeoutMs)
        read("ledgerGroupEntriesMax", &config.limits.ledgerGroupEntriesMax)
        read("ledgerQueueEntriesMax", &config.limits.ledgerQueueEntriesMax)
        read("recentKeysMax", &config.limits.recentKeysMax)
        read("credentialTTLSecondsMax", &config.limits.credentialTTLSecondsMax)
        read("drainTimeoutMs", &config.limits.drainTimeoutMs)
        read("openSessionsMax", &config.limits.openSessionsMax)
        read("sessionIdleAfterMs", &config.limits.sessionIdleAfterMs)
        read("sessionTimeoutMs", &config.limits.sessionTimeoutMs)
        read("sessionSweepMs", &config.limits.sessionSweepMs)
        read("reservationTTLMs", &config.limits.reservationTTLMs)
        read("velocityFactor", &config.limits.velocityFactor)
        read("velocityWindowMinutes", &config.limits.velocityWindowMinutes)
        read("velocityMinCallsPerMinute", &config.limits.velocityMinCallsPerMinute)
        read("marginL1Percent", &config.limits.marginL1Percent)
        read("marginL2Percent", &config.limits.marginL2Percent)
        read("marginL3Percent", &config.limits.marginL3Percent)
        read("marginThrottleMs", &config.limits.marginThrottleMs)
        try config.validate()
        return config
    }

    /// Checks each limit and the limits against each other; the first violation is thrown.
    public func validate() throws(ConfigurationError) {
        _ = try listenAddress()
        let l = limits
        func check(_ ok: Bool, _ key: String, _ rule: String) throws(ConfigurationError) {
            if !ok { throw .invalid(key: key, rule: rule) }
        }
        try check(
            (1024...Int(UInt32.max)).contains(l.frameBytesMax), "limits.frameBytesMax",
            "from 1024 (room for any error answer) to 4294967295")
        try check(l.batchMax >= 1, "limits.batchMax", "at least 1")
        try check(l.inFlightMax >= 1, "limits.inFlightMax", "at least 1")
        try check(
            l.batchMax <= l.inFlightMax, "limits.batchMax", "at most limits.inFlightMax, so one batch fits in flight")
        try check(l.connectionsMax >= 1, "limits.connectionsMax", "at least 1")
        try check(l.unauthenticatedIdleMs >= 100, "limits.unauthenticatedIdleMs", "at least 100")
        try check(l.idleMs >= 0, "limits.idleMs", "0 (never) or a number of milliseconds")
        try check(l.storageStartupTimeoutMs >= 0, "limits.storageStartupTimeoutMs", "not negative")
        try check(l.storageTimeoutMs >= 100, "limits.storageTimeoutMs", "at least 100")
        try check(l.ledgerGroupEntriesMax >= 1, "limits.ledgerGroupEntriesMax", "at least 1")
        try check(
            l.ledgerQueueEntriesMax >= l.ledgerGroupEntriesMax, "limits.ledgerQueueEntriesMax",
            "at least limits.ledgerGroupEntriesMax")
        try check(l.recentKeysMax >= 1, "limits.recentKeysMax", "at least 1")
        try check(l.credentialTTLSecondsMax >= 60, "limits.credentialTTLSecondsMax", "at least 60")
        try check(l.drainTimeoutMs >= 0, "limits.drainTimeoutMs", "not negative")
        try check(l.openSessionsMax >= 1, "limits.openSessionsMax", "at least 1")
        try check(l.sessionIdleAfterMs >= 1, "limits.sessionIdleAfterMs", "at least 1")
        try check(
            l.sessionTimeoutMs >= l.sessionIdleAfterMs, "limits.sessionTimeoutMs", "at least limits.sessionIdleAfterMs")
        try check(l.sessionSweepMs >= 1, "limits.sessionSweepMs", "at least 1")
        try check(l.reservationTTLMs >= 1000, "limits.reservationTTLMs", "at least 1000")
        try check(l.velocityFactor >= 1, "limits.velocityFactor", "at least 1")
        try check(
            (1...10_080).contains(l.velocityWindowMinutes), "limits.velocityWindowMinutes", "from 1 to 10080 (a week)")
        try check(l.velocityMinCallsPerMinute >= 1, "limits.velocityMinCallsPerMinute", "at least 1")
        for (key, value) in [
            ("marginL1Percent", l.marginL1Percent), ("marginL2Percent", l.marginL2Percent),
            ("marginL3Percent", l.marginL3Percent),
        ] {
            try check(value >= 0, "limits.\(key)", "0 (off) or a percentage")
        }
        try check(l.marginThrottleMs >= 1, "limits.marginThrottleMs", "at least 1")
        _ = try storage()
    }

    public func listenAddress() throws(ConfigurationError) -> (host: String, port: Int) {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
            (0...65535).contains(port)
        else {
            throw .invalid(key: "listen", rule: "host:port with a port from 0 to 65535")
        }
        var host = String(listen[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw .invalid(key: "listen", rule: "host:port with a non-empty host") }
        return (host, port)
    }

    public enum Storage: Sendable, Equatable {
        case sqlite(path: String)
        case postgres(url: String)
        /// Unit tests only: nothing survives the process.
        case memory
    }

    public func storage() throws(ConfigurationError) -> Storage {
        if storageURL == "memory:" { return .memory }
        if storageURL.hasPrefix("postgres://") || storageURL.hasPrefix("postgresql://") {
            return .postgres(url: storageURL)
        }
        for prefix in ["sqlite://", "sqlite:"] where storageURL.hasPrefix(prefix) {
            let path = String(storageURL.dropFirst(prefix.count))
            guard !path.isEmpty else { break }
            return .sqlite(path: path)
        }
        throw .invalid(key: "storage.url", rule: "sqlite:PATH, postgres://user:password@host:port/database or memory:")
    }

    var runtimeLimits: Supervisor.Limits {
        Supervisor.Limits(
            tenant: .init(
                recentKeysMax: limits.recentKeysMax,
                credentialTTLSecondsMax: Int64(limits.credentialTTLSecondsMax),
                openSessionsMax: limits.openSessionsMax,
                sessionTimeouts: SessionTimeouts(
                    idleAfter: Double(limits.sessionIdleAfterMs) / 1000,
                    sessionTimeout: Double(limits.sessionTimeoutMs) / 1000),
                reservationTTLMs: Int64(limits.reservationTTLMs),
                guards: GuardLimits(
                    velocityFactor: limits.velocityFactor,
                    velocityWindowMinutes: limits.velocityWindowMinutes,
                    velocityMinCallsPerMinute: limits.velocityMinCallsPerMinute,
                    marginL1Percent: limits.marginL1Percent,
                    marginL2Percent: limits.marginL2Percent,
                    marginL3Percent: limits.marginL3Percent,
                    marginThrottleMs: Int64(limits.marginThrottleMs))))
    }
}

public enum ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalid(key: String, rule: String)
    public var description: String {
        switch self {
        case .invalid(let key, let rule): "configuration \(key) must be \(rule)"
        }
    }
}

extension ServerConfiguration {
    /// The storage URL with any password replaced by `***`: the only form that is logged.
    public var redactedStorageURL: String { PostgresURL.redacted(storageURL) }
}
