import Configuration
import Foundation
import SystemPackage
import TollgateCore
import TollgateJSON
import TollgatePostgres
import TollgateRuntime
import TollgateSQLite

/// Everything `tollgated` can be told, with the defaults it uses when told nothing. Each component owns its
/// configuration — its keys, their defaults and their notes, written once (`ComponentConfiguration`); this
/// nests them, reads them all the same way, and checks them against each other. `Config/tollgate.json`
/// documents every key; a test checks that the file's values and notes are these.
public struct ServerConfiguration: Sendable, Equatable {
    /// `host:port` to listen on. Port 0 picks a free port (tests).
    public var listen = "127.0.0.1:7420"
    /// `sqlite:PATH` (the default, a file in the working directory) or `postgres://user:pass@host:port/db`.
    public var storageURL = "sqlite:tollgate.sqlite"
    public var listener = ListenerConfiguration()
    public var ledger = LedgerWriter.Configuration()
    public var runtime = RuntimeConfiguration()
    public var sqlite = SQLiteStore.Configuration()
    public var postgres = PostgresStore.Configuration()
    public var stripe = StripeConfiguration()

    public init() {}

    /// Every key under `limits`, with its note and its current value, component by component.
    public var settings: [(name: String, note: String, value: Int)] {
        func rows<C: ComponentConfiguration>(_ component: C) -> [(name: String, note: String, value: Int)] {
            C.settings.map { ($0.name, $0.note, component[keyPath: $0.path]) }
        }
        return rows(listener) + rows(ledger) + rows(runtime) + rows(sqlite) + rows(postgres) + rows(stripe)
    }

    /// What `listen` and `storage.url` mean; every other key's note is its component's.
    static let notes: [(key: String, note: String)] = [
        ("listen", "host:port to accept connections on (env TOLLGATE_LISTEN). Port 0 picks a free port."),
        (
            "storage.url",
            "sqlite:PATH (embedded default, relative to the working directory) or "
                + "postgres://user:password@host:port/database?sslmode=disable|prefer|require (env "
                + "TOLLGATE_STORAGE_URL). The password is never logged."
        ),
        (
            "stripe.apiBase",
            "where Stripe's API is (env TOLLGATE_STRIPE_API_BASE). The hand-off to Stripe runs when a secret key is "
                + "set: env TOLLGATE_STRIPE_SECRET_KEY or stripe.secretKey (never printed or logged)."
        ),
    ]

    /// This configuration as a configuration file, every key with its value and its note: what
    /// `Config/tollgate.json` holds for the defaults (`tollgated --print-config` prints it).
    public var file: String {
        func quoted(_ text: String) -> String { JSONCodec.string(.string(text)) }
        let settings = self.settings
        var lines = [
            "{", "  \"listen\": \(quoted(listen)),", "  \"storage\": {", "    \"url\": \(quoted(storageURL))",
            "  },", "  \"stripe\": {", "    \"apiBase\": \(quoted(stripe.apiBase))", "  },", "  \"limits\": {",
        ]
        for (index, setting) in settings.enumerated() {
            lines.append("    \(quoted(setting.name)): \(setting.value)\(index < settings.count - 1 ? "," : "")")
        }
        lines += ["  },", "  \"notes\": {"]
        var notes = Self.notes
        for setting in settings {
            notes.append(("limits.\(setting.name)", "\(setting.note) (env \(Self.environmentName(setting.name)))."))
        }
        for (index, entry) in notes.enumerated() {
            lines.append("    \(quoted(entry.key)): \(quoted(entry.note))\(index < notes.count - 1 ? "," : "")")
        }
        lines += ["  }", "}", ""]
        return lines.joined(separator: "\n")
    }

    /// The environment variable of a `limits` key, as swift-configuration names it: an underscore where a
    /// lower-case letter meets an upper-case one, then upper case (`inFlightMax` → `TOLLGATE_LIMITS_IN_FLIGHT_MAX`,
    /// `reservationTTLMs` → `TOLLGATE_LIMITS_RESERVATION_TTLMS`).
    public static func environmentName(_ name: String) -> String {
        var snake = ""
        var previous: Character?
        for character in name {
            if previous?.isLowercase == true, character.isUppercase { snake.append("_") }
            snake.append(character.uppercased())
            previous = character
        }
        return "TOLLGATE_LIMITS_" + snake
    }

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
        config.stripe.secretKey = reader.string(forKey: "stripe.secretKey")
        config.stripe.apiBase = reader.string(forKey: "stripe.apiBase", default: config.stripe.apiBase)
        let limits = reader.scoped(to: "limits")
        func read<C: ComponentConfiguration>(_ component: inout C) {
            for setting in C.settings {
                component[keyPath: setting.path] = limits.int(
                    forKey: ConfigKey(setting.name), default: component[keyPath: setting.path])
            }
        }
        read(&config.listener)
        read(&config.ledger)
        read(&config.runtime)
        read(&config.sqlite)
        read(&config.postgres)
        read(&config.stripe)
        try config.validate()
        return config
    }

    /// Checks each component's values, then the components against each other; the first violation is thrown.
    public func validate() throws(ConfigurationError) {
        _ = try listenAddress()
        try listener.validate()
        try ledger.validate()
        try runtime.validate()
        try sqlite.validate()
        try postgres.validate()
        try stripe.validate()
        // A key appears in one component only: two reading one key would be two defaults for it.
        let names = settings.map(\.name)
        precondition(Set(names).count == names.count, "a configuration key is read by two components")
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
}

extension ServerConfiguration {
    /// The storage URL with any password replaced by `***`: the only form that is logged.
    public var redactedStorageURL: String { PostgresURL.redacted(storageURL) }
}
