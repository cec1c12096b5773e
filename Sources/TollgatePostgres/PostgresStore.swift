import Foundation
import Logging
import PostgresNIO
import Synchronization
import TollgateCore
import TollgateJSON
import TollgateStorage

/// The production store: PostgreSQL through postgres-nio's connection pool. Several `tollgated` nodes may
/// share one database. A group commit is one transaction with one multi-row insert per table (`UNNEST`),
/// so it costs a few round trips however many calls it carries.
public final class PostgresStore: TollgateStore {
    /// How the store reaches the database: its keys and defaults, written once.
    public struct Configuration: ComponentConfiguration {
        /// Connections in the pool.
        public var connectionsMax = 8
        /// How long `init` keeps trying to reach the database (logging each failed attempt) before it fails, in
        /// milliseconds.
        public var startupTimeoutMs = 30_000
        /// Longest a request waits for a connection, and then for its answer, before it fails, in milliseconds.
        public var requestTimeoutMs = 10_000

        public init() {}

        var startupTimeout: Duration { .milliseconds(startupTimeoutMs) }
        var requestTimeout: Duration { .milliseconds(requestTimeoutMs) }

        public static let settings: [Setting<Self>] = [
            Setting("postgresConnectionsMax", \.connectionsMax, "PostgreSQL: connections in the pool of each node"),
            Setting(
                "storageStartupTimeoutMs", \.startupTimeoutMs,
                "how long tollgated keeps trying to reach its database at start, logging each failed attempt, before "
                    + "it exits non-zero with the reason, in milliseconds"),
            Setting(
                "storageTimeoutMs", \.requestTimeoutMs,
                "longest a request waits for PostgreSQL (a connection or an answer) before it fails with "
                    + "UNAVAILABLE, nothing recorded; requests succeed again once the database is back"),
        ]

        public func validate() throws(ConfigurationError) {
            try ConfigurationError.check(connectionsMax >= 1, "postgresConnectionsMax", "at least 1")
            try ConfigurationError.check(startupTimeoutMs >= 0, "storageStartupTimeoutMs", "not negative")
            try ConfigurationError.check(requestTimeoutMs >= 100, "storageTimeoutMs", "at least 100")
        }
    }

    private let client: PostgresClient
    private let runner: Task<Void, Never>
    private let logger: Logger
    private let options: Configuration

    /// Connects (retrying for up to `options.startupTimeout`), and applies pending migrations under an
    /// advisory lock so that nodes starting together do not race each other.
    public init(
        url: String, configuration options: Configuration = Configuration(),
        logger: Logger = Logger(label: "tollgate.postgres")
    )
        async throws(StorageError)
    {
        var configuration = try PostgresURL.configuration(url)
        configuration.options.maximumConnections = options.connectionsMax
        try await Self.waitUntilReachable(
            try PostgresURL.connectionConfiguration(url),
            redacted: PostgresURL.redacted(url),
            timeout: options.startupTimeout, logger: logger)
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        self.logger = logger
        self.options = options
        runner = Task { await client.run() }
        do {
            try await migrate()
        } catch {
            runner.cancel()
            throw error
        }
    }

    /// Tries a connection once a second until one opens or `timeout` has passed, logging every failure with
    /// its reason (never the password). Without this a server whose database is down or refuses it would wait
    /// for ever, silently, before it listens.
    static func waitUntilReachable(
        _ configuration: PostgresConnection.Configuration, redacted: String,
        timeout: Duration, logger: Logger
    ) async throws(StorageError) {
        let deadline = ContinuousClock.now + timeout
        var attempt = 0
        while true {
            attempt += 1
            let reason: String
            do {
                let connection = try await PostgresConnection.connect(
                    configuration: configuration, id: attempt, logger: logger)
                try? await connection.close()
                if attempt > 1 { logger.info("PostgreSQL is reachable", metadata: ["storage": "\(redacted)"]) }
                return
            } catch {
                reason = Self.reason(error)
            }
            let timedOut = ContinuousClock.now >= deadline
            logger.warning(
                "cannot reach PostgreSQL",
                metadata: [
                    "storage": "\(redacted)", "attempt": "\(attempt)", "error": "\(reason)",
                    "next": "\(timedOut ? "giving up" : "retrying in 1 s")",
                ])
            if timedOut {
                throw .backend(
                    "could not reach PostgreSQL at \(redacted) within \(timeout) (\(attempt) attempts): \(reason)")
            }
            do { try await Task.sleep(for: .seconds(1)) } catch { throw .backend("start cancelled") }
        }
    }

    /// What went wrong, as an operator can act on it: the server's message, or the network's.
    static func reason(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return String(describing: error) }
        if let message = error.serverInfo?[.message] { return message }
        if let underlying = error.underlying { return String(describing: underlying) }
        return "\(error.code)"
    }

    public func close() async throws {
        runner.cancel()
        await runner.value
    }

    private static let migrationLock: Int64 = 0x746f_6c6c_6761_7465  // "tollgate"

    private func migrate() async throws(StorageError) {
        try await run(bodyDeadline: false) { connection, logger in
            try await connection.withTransaction(logger: logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationLock))", logger: logger)
                try await connection.query(
                    """
                    CREATE TABLE IF NOT EXISTS tollgate_migrations (name TEXT PRIMARY KEY, applied_at_ms BIGINT NOT
                        NULL)
                    """, logger: logger)
                var applied = Set<String>()
                for try await name in try await connection.query("SELECT name FROM tollgate_migrations", logger: logger)
                    .decode(String.self)
                { applied.insert(name) }
                for migration in PostgresMigrations.all where !applied.contains(migration.name) {
                    for statement in migration.sql {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    let now = Timestamp.millis(Date())
                    try await connection.query(
                        "INSERT INTO tollgate_migrations(name, applied_at_ms) VALUES (\(migration.name), \(now))",
                        logger: logger)
                }
            }
        }
    }

    // MARK: helpers

    /// Runs `body` on a connection of the pool. Waiting for the connection is bounded by `requestTimeout`:
    /// the pool retries a lost database for ever, and a request must not wait for ever with it, so it fails
    /// (the caller answers `UNAVAILABLE`) and the next one tries again. Once `body` runs it gets a second
    /// `requestTimeout` before the request is answered as failed and the body left to end on its own: a query
    /// on a connection lost mid-way was seen never to return. For a commit that is the same unknown outcome as
    /// a connection lost during COMMIT, which postgres-nio reports as an error too: the client's retry with its
    /// key finds the charge if it was recorded.
    ///
    /// The wait is not a task group: a group waits for its children, and a lease the pool does not give up on
    /// cancellation would hold the request for ever (seen once in six runs of the outage test). Instead the
    /// request is answered by whichever comes first — the lease, or the timeout — and a lease that comes after
    /// the timeout runs nothing: `Lease` lets exactly one of the two win.
    ///
    /// `bodyDeadline: false` lets a body that legitimately waits run on (the migrations wait for the lock of
    /// nodes migrating beside them).
    private func run<T: Sendable>(
        bodyDeadline: Bool = true,
        _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T
    )
        async throws(StorageError) -> T
    {
        let (client, logger, timeout) = (self.client, self.logger, options.requestTimeout)
        let lease = Lease<T>()
        do {
            return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                lease.start(continuation)
                let work = Task {
                    do {
                        let result = try await client.withConnection { connection -> T in
                            guard lease.claim() else { throw LeaseTimeout() }
                            return try await body(connection, logger)
                        }
                        lease.finish(.success(result))
                    } catch {
                        lease.finish(.failure(error))
                    }
                }
                lease.watch(
                    Task {
                        try? await Task.sleep(for: timeout)
                        if lease.expire() {
                            work.cancel()
                            return
                        }
                        guard bodyDeadline else { return }
                        try? await Task.sleep(for: timeout)
                        if lease.abandon() { work.cancel() }
                    })
            }
        } catch is LeaseTimeout {
            logger.error("no PostgreSQL connection within the request timeout", metadata: ["timeout": "\(timeout)"])
            throw .backend("postgres: no connection within \(timeout)")
        } catch is QueryTimeout {
            logger.error("no PostgreSQL answer within the request timeout", metadata: ["timeout": "\(timeout)"])
            throw .backend("postgres: no answer within \(timeout)")
        } catch {
            throw Self.translate(error)
        }
    }

    private struct LeaseTimeout: Error {}
    private struct QueryTimeout: Error {}

    /// One request's race between its lease and its timeout: waiting → leased (the body runs, its outcome
    /// answers) or waiting → expired (answered `LeaseTimeout` at once; a lease that comes later runs nothing).
    private final class Lease<T: Sendable>: Sendable {
        private enum Phase { case waiting, leased, expired, answered }
        private struct State {
            var phase = Phase.waiting
            var continuation: CheckedContinuation<T, any Error>?
            /// The timeout's task, cancelled once the request is answered so that it does not sleep on.
            var timer: Task<Void, Never>?
        }
        private let state = Mutex(State())

        func start(_ continuation: CheckedContinuation<T, any Error>) {
            state.withLock { $0.continuation = continuation }
        }

        func watch(_ timer: Task<Void, Never>) {
            let answered = state.withLock { state -> Bool in
                state.timer = timer
                return state.phase == .answered
            }
            if answered { timer.cancel() }
        }

        /// The pool gave a connection: true if the request is still waiting for it.
        func claim() -> Bool {
            state.withLock { state in
                guard state.phase == .waiting else { return false }
                state.phase = .leased
                return true
            }
        }

        /// The timeout: true if it won (the request is answered with `LeaseTimeout`).
        func expire() -> Bool {
            let continuation = state.withLock { state -> CheckedContinuation<T, any Error>? in
                guard state.phase == .waiting else { return nil }
                state.phase = .expired
                defer { state.continuation = nil }
                return state.continuation
            }
            continuation?.resume(throwing: LeaseTimeout())
            return continuation != nil
        }

        /// The body has run for a second timeout: true if it was still running (the request is answered with
        /// `QueryTimeout`; the body's own outcome, when it comes, is ignored).
        func abandon() -> Bool {
            let continuation = state.withLock { state -> CheckedContinuation<T, any Error>? in
                guard state.phase == .leased else { return nil }
                state.phase = .expired
                defer { state.continuation = nil }
                return state.continuation
            }
            continuation?.resume(throwing: QueryTimeout())
            return continuation != nil
        }

        /// The work ended (the body's outcome, or the pool's failure before a lease): answers unless the
        /// timeout already did.
        func finish(_ result: Result<T, any Error>) {
            typealias Answer = (CheckedContinuation<T, any Error>?, Task<Void, Never>?)
            let (continuation, timer) = state.withLock { state -> Answer in
                guard state.phase != .expired, state.phase != .answered else { return (nil, nil) }
                state.phase = .answered
                defer { state.continuation = nil }
                return (state.continuation, state.timer)
            }
            timer?.cancel()
            continuation?.resume(with: result)
        }
    }

    private func rows<each T: PostgresDecodable & Sendable>(_ query: PostgresQuery, as: (repeat each T).Type)
        async throws(StorageError) -> [(repeat each T)]
    {
        try await run { connection, logger in
            var result: [(repeat each T)] = []
            for try await row in try await connection.query(query, logger: logger).decode((repeat each T).self) {
                result.append(row)
            }
            return result
        }
    }

    private func execute(_ query: PostgresQuery) async throws(StorageError) {
        try await run { connection, logger in _ = try await connection.query(query, logger: logger) }
    }

    static func translate(_ error: any Error) -> StorageError {
        if let error = error as? StorageError { return error }
        if let error = error as? PostgresTransactionError {
            // What went wrong inside the transaction, else in BEGIN or COMMIT.
            return translate(
                error.closureError ?? error.beginError ?? error.commitError ?? error.rollbackError ?? error)
        }
        if let error = error as? PSQLError {
            if error.serverInfo?[.sqlState] == "23505" {
                return .duplicate(error.serverInfo?[.constraintName] ?? "row")
            }
            // PSQLError's own description is redacted; the server's message is what helps an operator.
            return .backend("postgres: \(error.code) \(reason(error))")
        }
        return .backend(String(describing: error))
    }

    // MARK: settings and tenants

    public func setting(_ key: String) async throws(StorageError) -> String? {
        try await rows("SELECT value FROM settings WHERE key = \(key)", as: (String).self).first
    }

    public func putSetting(_ key: String, _ value: String) async throws(StorageError) {
        try await execute(
            """
            INSERT INTO settings(key, value) VALUES (\(key), \(value)) ON CONFLICT(key) DO UPDATE SET value =
                excluded.value
            """)
    }

    public func insertTenant(_ tenant: TenantRecord, firstOperator: OperatorCredential, tokenHash: String)
        async throws(StorageError)
    {
        // One statement, so both rows or neither; operator_token_hash is the first credential's, for the schema's
        // sake: nothing reads it.
        let c = firstOperator
        try await execute(
            """
            WITH tenant AS (
                INSERT INTO tenants(id, name, operator_token_hash, created_at_ms)
                VALUES (\(tenant.id), \(tenant.name), \(tokenHash), \(Timestamp.millis(tenant.createdAt))) RETURNING id
            )
            INSERT INTO operator_credentials(tenant_id, id, name, scopes, token_hash, token_prefix, created_at_ms,
                expires_at_ms, revoked_at_ms, last_used_at_ms)
            SELECT tenant.id, \(c.id), \(c.name), \(c.scopes.joined(separator: " ")), \(tokenHash), \(c.tokenPrefix),
                \(Timestamp.millis(c.createdAt)), \(c.expiresAt.map(Timestamp.millis)),
                \(c.revokedAt.map(Timestamp.millis)), \(c.lastUsedAt.map(Timestamp.millis))
            FROM tenant
            """)
    }

    private static func tenant(_ row: (String, String, Int64)) -> TenantRecord {
        TenantRecord(id: row.0, name: row.1, createdAt: Timestamp.date(millis: row.2))
    }

    public func tenant(id: String) async throws(StorageError) -> TenantRecord? {
        try await rows(
            "SELECT id, name, created_at_ms FROM tenants WHERE id = \(id)", as: (String, String, Int64).self
        ).first.map(Self.tenant)
    }

    private typealias OperatorColumns = (String, String, String, String, String?, Int64, Int64?, Int64?, Int64?)
    private static let operatorColumns = """
        tenant_id, id, name, scopes, token_prefix, created_at_ms, expires_at_ms, revoked_at_ms, last_used_at_ms
        """
    private static func operatorCredential(_ row: OperatorColumns) -> OperatorCredential {
        OperatorCredential(
            id: row.1, tenantId: row.0, name: row.2, scopes: row.3.split(separator: " ").map(String.init),
            createdAt: Timestamp.date(millis: row.5), expiresAt: row.6.map(Timestamp.date(millis:)),
            revokedAt: row.7.map(Timestamp.date(millis:)), tokenPrefix: row.4,
            lastUsedAt: row.8.map(Timestamp.date(millis:)))
    }

    public func operatorCredential(tokenHash: String) async throws(StorageError) -> OperatorCredential? {
        try await rows(
            "SELECT \(unescaped: Self.operatorColumns) FROM operator_credentials WHERE token_hash = \(tokenHash)",
            as: OperatorColumns.self
        ).first.map(Self.operatorCredential)
    }

    public func tenants() async throws(StorageError) -> [TenantRecord] {
        try await rows(
            "SELECT id, name, created_at_ms FROM tenants ORDER BY created_at_ms, id", as: (String, String, Int64).self
        ).map(Self.tenant)
    }

    public func loadTenant(_ tenantId: String) async throws(StorageError) -> TenantSnapshot? {
        guard let tenant = try await tenant(id: tenantId) else { return nil }
        var snapshot = TenantSnapshot(tenant: tenant)
        snapshot.customers = try await rows(
            """
            SELECT id, name, external_id, time_zone, tax_rate_nanos, block_at_zero_credit FROM customers
            WHERE tenant_id = \(tenantId)
            """, as: (String, String, String?, String, Int64, Bool).self
        ).map {
            Customer(
                id: $0.0, tenantId: tenantId, name: $0.1, externalId: $0.2, timeZone: $0.3,
                taxRate: Money(nanos: $0.4), blockAtZeroCredit: $0.5)
        }
        snapshot.creditGrants = try await rows(
            """
            SELECT id, customer_id, currency, amount_nanos, kind, priority, granted_at_ms, expires_at_ms, description
            FROM credit_grants WHERE tenant_id = \(tenantId)
            """, as: (String, String, String, Int64, String, Int64, Int64, Int64?, String).self
        ).map { row throws(StorageError) in
            guard let kind = CreditGrant.Kind(rawValue: row.4) else {
                throw .backend("credit grant \(row.0) has an unknown kind")
            }
            return CreditGrant(
                id: row.0, tenantId: tenantId, customerId: row.1, currency: row.2, amount: Money(nanos: row.3),
                kind: kind, priority: Int(row.5), grantedAt: Timestamp.date(millis: row.6),
                expiresAt: row.7.map(Timestamp.date(millis:)), description: row.8)
        }
        snapshot.discounts = try await rows(
            """
            SELECT id, customer_id, percent_off_nanos, amount_off_nanos, currency, starts_at_ms, ends_at_ms,
                description, created_at_ms
            FROM discounts WHERE tenant_id = \(tenantId)
            """, as: (String, String, Int64?, Int64?, String?, Int64, Int64?, String, Int64).self
        ).map { row throws(StorageError) in
            let off: Discount.Off
            if let percent = row.2 {
                off = .percent(Money(nanos: percent))
            } else if let amount = row.3, let currency = row.4 {
                off = .amount(Money(nanos: amount), currency: currency)
            } else {
                throw .backend("discount \(row.0) has no percent or amount off")
            }
            return Discount(
                id: row.0, tenantId: tenantId, customerId: row.1, off: off, startsAt: Timestamp.date(millis: row.5),
                endsAt: row.6.map(Timestamp.date(millis:)), description: row.7,
                createdAt: Timestamp.date(millis: row.8))
        }
        snapshot.teams = try await rows(
            "SELECT id, customer_id, name FROM teams WHERE tenant_id = \(tenantId)",
            as: (String, String, String).self
        ).map {
            Team(id: $0.0, tenantId: tenantId, customerId: $0.1, name: $0.2)
        }
        snapshot.agents = try await rows(
            """
            SELECT id, team_id, name, agent_type, client_id FROM agents WHERE tenant_id = \(tenantId)
            """, as: (String, String, String, String?, String).self
        ).map {
            Agent(id: $0.0, tenantId: tenantId, teamId: $0.1, name: $0.2, agentType: $0.3, clientId: $0.4)
        }
        snapshot.credentials = try await rows(
            """
            SELECT \(unescaped: Self.credentialColumns) FROM credentials WHERE tenant_id = \(tenantId)
            """, as: CredentialColumns.self
        ).map(Self.credential)
        snapshot.operatorCredentials = try await rows(
            """
            SELECT \(unescaped: Self.operatorColumns) FROM operator_credentials WHERE tenant_id = \(tenantId)
            """, as: OperatorColumns.self
        ).map(Self.operatorCredential)
        snapshot.caps = try await rows(
            """
            SELECT id, scope, scope_id, period, limit_nanos, warn_at_percent FROM caps WHERE tenant_id = \(tenantId)
            """, as: (String, String, String, String, Int64, Int64?).self
        ).map { row throws(StorageError) in
            guard let scope = CapScope(rawValue: row.1), let period = CapPeriod(rawValue: row.3) else {
                throw .backend("cap row with unknown scope or period")
            }
            return Cap(
                id: row.0, tenantId: tenantId, target: ScopeRef(scope, row.2), limit: Money(nanos: row.4),
                period: period, warnAtPercent: row.5.map(Int.init))
        }
        snapshot.plans = try await rows(
            """
            SELECT plan_id, name, version, document, created_at_ms FROM plans WHERE tenant_id = \(tenantId) ORDER BY
                name, version
            """, as: (String, String, Int64, String, Int64).self
        ).map {
            PlanRecord(
                tenantId: tenantId, planId: $0.0, name: $0.1, version: Int($0.2), document: $0.3,
                createdAt: Timestamp.date(millis: $0.4))
        }
        snapshot.subscriptions = try await rows(
            """
            SELECT id, customer_id, plan_id, version, starts_at_ms, period_cadence, period_anchor, product_id
            FROM subscriptions WHERE tenant_id = \(tenantId)
            """, as: (String, String, String, Int64, Int64, String, Int64, String?).self
        ).map { row throws(StorageError) in
            guard let period = BillingCalendar.Cadence(stored: row.5, anchor: Int(row.6)) else {
                throw .backend("subscription \(row.0) has an unknown period cadence")
            }
            return SubscriptionRecord(
                id: row.0, tenantId: tenantId, customerId: row.1, planId: row.2, version: Int(row.3),
                startsAt: Timestamp.date(millis: row.4), period: period, productId: row.7)
        }
        snapshot.products = try await rows(
            "SELECT id, name, kind, catalog, closed, created_at_ms FROM products WHERE tenant_id = \(tenantId)",
            as: (String, String, String, String, Bool, Int64).self
        ).map { row throws(StorageError) in
            guard let kind = Product.Kind(rawValue: row.2) else {
                throw .backend("product \(row.0) has an unknown kind")
            }
            return Product(
                id: row.0, tenantId: tenantId, name: row.1, kind: kind, tools: try ProductCatalog.tools(row.3),
                closed: row.4, createdAt: Timestamp.date(millis: row.5))
        }
        snapshot.planSwaps = try await rows(
            """
            SELECT id, subscription_id, plan_id, version, effective_at_ms FROM plan_swaps WHERE tenant_id = \(tenantId)
            """, as: (String, String, String, Int64, Int64).self
        ).map {
            PlanSwapRecord(
                id: $0.0, tenantId: tenantId, subscriptionId: $0.1, planId: $0.2, version: Int($0.3),
                effectiveAt: Timestamp.date(millis: $0.4))
        }
        return snapshot
    }

    private typealias CredentialColumns = (
        String, String, String, String, Int64, Int64?, Int64?, String?, Int64?, String?, String?
    )
    private static let credentialColumns = """
        tenant_id, id, agent_id, scopes, expires_at_ms, revoked_at_ms, spend_limit_nanos, token_prefix,
            last_used_at_ms, parent_id, label
        """
    private static func credential(_ row: CredentialColumns) -> Credential {
        Credential(
            id: row.1, tenantId: row.0, agentId: row.2, scopes: row.3.split(separator: " ").map(String.init),
            expiresAt: Timestamp.date(millis: row.4), revokedAt: row.5.map(Timestamp.date(millis:)),
            spendLimit: row.6.map(Money.init(nanos:)), tokenPrefix: row.7,
            lastUsedAt: row.8.map(Timestamp.date(millis:)), parentId: row.9, label: row.10)
    }

    // MARK: hierarchy

    public func insertAgent(_ agent: Agent, clientSecretHash: String) async throws(StorageError) {
        try await execute(
            """
            INSERT INTO agents(tenant_id, id, team_id, name, agent_type, client_id, client_secret_hash)
            VALUES (\(agent.tenantId), \(agent.id), \(agent.teamId), \(agent.name), \(agent.agentType),
                \(agent.clientId),
                    \(clientSecretHash))
            """)
    }

    public func agent(clientId: String) async throws(StorageError) -> (agent: Agent, secrets: ClientSecrets)? {
        try await rows(
            """
            SELECT tenant_id, id, team_id, name, agent_type, client_id, client_secret_hash, previous_secret_hash,
                previous_secret_until_ms
            FROM agents WHERE client_id = \(clientId)
            """, as: (String, String, String, String, String?, String, String, String?, Int64?).self
        ).first.map {
            (
                Agent(id: $0.1, tenantId: $0.0, teamId: $0.2, name: $0.3, agentType: $0.4, clientId: $0.5),
                ClientSecrets(hash: $0.6, previousHash: $0.7, previousUntil: $0.8.map(Timestamp.date(millis:)))
            )
        }
    }

    public func insertCredential(_ credential: Credential, tokenHash: String) async throws(StorageError) {
        try await execute(
            """
            INSERT INTO credentials(tenant_id, id, agent_id, scopes, expires_at_ms, revoked_at_ms, spend_limit_nanos,
                token_hash, token_prefix, parent_id, label)
            VALUES (\(credential.tenantId), \(credential.id), \(credential.agentId),
                \(credential.scopes.joined(separator: " ")),
                    \(Timestamp.millis(credential.expiresAt)), \(credential.revokedAt.map(Timestamp.millis)),
                    \(credential.spendLimit?.nanos), \(tokenHash), \(credential.tokenPrefix), \(credential.parentId),
                    \(credential.label))
            """)
    }

    public func credential(tokenHash: String) async throws(StorageError) -> Credential? {
        try await rows(
            "SELECT \(unescaped: Self.credentialColumns) FROM credentials WHERE token_hash = \(tokenHash)",
            as: CredentialColumns.self
        ).first.map(Self.credential)
    }

    // MARK: tenant writes

    public func write(_ change: TenantWrite, answer: IdempotencyRecord?) async throws(StorageError) -> WriteOutcome {
        try await run { connection, logger in
            do {
                return try await connection.withTransaction(logger: logger) { connection -> WriteOutcome in
                    if let a = answer {
                        let inserted = try await connection.query(
                            """
                            INSERT INTO idempotency(tenant_id, key, method, params, result, created_at_ms)
                            VALUES (\(a.tenantId), \(a.key), \(a.method), \(a.params), \(a.result),
                                \(Timestamp.millis(a.createdAt)))
                            ON CONFLICT (tenant_id, key) DO NOTHING RETURNING key
                            """, logger: logger
                        ).collect()
                        if inserted.isEmpty {
                            let rows = try await connection.query(
                                """
                                SELECT method, params, result, created_at_ms FROM idempotency
                                WHERE tenant_id = \(a.tenantId) AND key = \(a.key)
                                """, logger: logger
                            ).collect()
                            guard let row = rows.first else { throw StorageError.backend("idempotency key vanished") }
                            let (method, params, result, created) = try row.decode((String, String, String, Int64).self)
                            return .keyTaken(
                                IdempotencyRecord(
                                    tenantId: a.tenantId, key: a.key, method: method, params: params, result: result,
                                    createdAt: Timestamp.date(millis: created)))
                        }
                    }
                    let (query, counted) = Self.statement(change)
                    guard let query else { return .written }
                    let rows = try await connection.query(query, logger: logger).collect()
                    // Nothing to change: rolled back, so that the answer is not kept either.
                    if counted && rows.isEmpty { throw Unchanged() }
                    return .written
                }
            } catch let error as PostgresTransactionError where error.closureError is Unchanged {
                return .unchanged
            }
        }
    }

    /// Thrown inside a transaction to roll it back when its change had nothing to change.
    private struct Unchanged: Error {}

    /// The statement making `change` (nil: nothing but the answer), and whether it returns a row only when it
    /// changed something (`RETURNING`); the others change a row or fail.
    private static func statement(_ change: TenantWrite) -> (PostgresQuery?, counted: Bool) {
        switch change {
        case .insertCustomer(let customer):
            return (
                """
                INSERT INTO customers(tenant_id, id, name, external_id, time_zone, tax_rate_nanos, block_at_zero_credit)
                VALUES (\(customer.tenantId), \(customer.id), \(customer.name), \(customer.externalId),
                    \(customer.timeZone), \(customer.taxRate.nanos), \(customer.blockAtZeroCredit))
                """, false
            )
        case .updateCustomer(let customer):
            return (
                """
                UPDATE customers SET name = \(customer.name), tax_rate_nanos = \(customer.taxRate.nanos),
                    block_at_zero_credit = \(customer.blockAtZeroCredit)
                WHERE tenant_id = \(customer.tenantId) AND id = \(customer.id) RETURNING id
                """, true
            )
        case .insertProduct(let product):
            return (
                """
                INSERT INTO products(tenant_id, id, name, kind, catalog, closed, created_at_ms)
                VALUES (\(product.tenantId), \(product.id), \(product.name), \(product.kind.rawValue),
                    \(ProductCatalog.text(product.tools)), \(product.closed), \(Timestamp.millis(product.createdAt)))
                """, false
            )
        case .updateProduct(let product):
            return (
                """
                UPDATE products SET catalog = \(ProductCatalog.text(product.tools)), closed = \(product.closed)
                WHERE tenant_id = \(product.tenantId) AND id = \(product.id) RETURNING id
                """, true
            )
        case .insertDiscount(let discount):
            let (percent, amount, currency) = discount.off.stored
            return (
                """
                INSERT INTO discounts(tenant_id, id, customer_id, percent_off_nanos, amount_off_nanos, currency,
                    starts_at_ms, ends_at_ms, description, created_at_ms)
                VALUES (\(discount.tenantId), \(discount.id), \(discount.customerId), \(percent), \(amount),
                    \(currency), \(Timestamp.millis(discount.startsAt)), \(discount.endsAt.map(Timestamp.millis)),
                    \(discount.description), \(Timestamp.millis(discount.createdAt)))
                """, false
            )
        case .endDiscount(let tenantId, let id, let endsAt):
            let millis = Timestamp.millis(endsAt)
            return (
                """
                UPDATE discounts SET ends_at_ms = \(millis)
                WHERE tenant_id = \(tenantId) AND id = \(id) AND (ends_at_ms IS NULL OR ends_at_ms > \(millis))
                RETURNING id
                """, true
            )
        case .insertCreditGrant(let grant):
            return (
                """
                INSERT INTO credit_grants(tenant_id, id, customer_id, currency, amount_nanos, kind, priority,
                    granted_at_ms, expires_at_ms, description)
                VALUES (\(grant.tenantId), \(grant.id), \(grant.customerId), \(grant.currency), \(grant.amount.nanos),
                    \(grant.kind.rawValue), \(Int64(grant.priority)), \(Timestamp.millis(grant.grantedAt)),
                    \(grant.expiresAt.map(Timestamp.millis)), \(grant.description))
                """, false
            )
        case .insertTeam(let team):
            return (
                """
                INSERT INTO teams(tenant_id, id, customer_id, name)
                VALUES (\(team.tenantId), \(team.id), \(team.customerId), \(team.name))
                """, false
            )
        case .insertPlan(let plan):
            return (
                """
                INSERT INTO plans(tenant_id, plan_id, name, version, document, created_at_ms)
                VALUES (\(plan.tenantId), \(plan.planId), \(plan.name), \(Int64(plan.version)), \(plan.document),
                    \(Timestamp.millis(plan.createdAt)))
                """, false
            )
        case .insertSubscription(let subscription):
            return (
                """
                INSERT INTO subscriptions(tenant_id, id, customer_id, plan_id, version, starts_at_ms, period_cadence,
                    period_anchor, product_id)
                VALUES (\(subscription.tenantId), \(subscription.id), \(subscription.customerId),
                    \(subscription.planId), \(Int64(subscription.version)), \(Timestamp.millis(subscription.startsAt)),
                    \(subscription.period.stored.cadence), \(Int64(subscription.period.stored.anchor)),
                    \(subscription.productId))
                """, false
            )
        case .insertPlanSwap(let swap):
            return (
                """
                INSERT INTO plan_swaps(tenant_id, id, subscription_id, plan_id, version, effective_at_ms)
                VALUES (\(swap.tenantId), \(swap.id), \(swap.subscriptionId), \(swap.planId), \(Int64(swap.version)),
                    \(Timestamp.millis(swap.effectiveAt)))
                """, false
            )
        case .upsertCap(let cap):
            return (
                """
                INSERT INTO caps(tenant_id, id, scope, scope_id, period, limit_nanos, warn_at_percent)
                VALUES (\(cap.tenantId), \(cap.id), \(cap.target.scope.rawValue), \(cap.target.id),
                    \(cap.period.rawValue), \(cap.limit.nanos), \(cap.warnAtPercent.map(Int64.init)))
                ON CONFLICT(tenant_id, scope, scope_id, period)
                DO UPDATE SET id = excluded.id, limit_nanos = excluded.limit_nanos,
                    warn_at_percent = excluded.warn_at_percent
                """, false
            )
        case .revokeCredential(let tenantId, let credentialId, let at):
            return (
                """
                WITH RECURSIVE line(id) AS (
                    SELECT \(credentialId)::TEXT
                    UNION SELECT c.id FROM credentials c
                    JOIN line ON c.tenant_id = \(tenantId) AND c.parent_id = line.id
                )
                UPDATE credentials SET revoked_at_ms = \(Timestamp.millis(at))
                WHERE tenant_id = \(tenantId) AND revoked_at_ms IS NULL AND id IN (SELECT id FROM line) RETURNING id
                """, true
            )
        case .insertOperatorCredential(let c, let tokenHash):
            return (
                """
                INSERT INTO operator_credentials(tenant_id, id, name, scopes, token_hash, token_prefix, created_at_ms,
                    expires_at_ms, revoked_at_ms, last_used_at_ms)
                VALUES (\(c.tenantId), \(c.id), \(c.name), \(c.scopes.joined(separator: " ")), \(tokenHash),
                    \(c.tokenPrefix), \(Timestamp.millis(c.createdAt)), \(c.expiresAt.map(Timestamp.millis)),
                    \(c.revokedAt.map(Timestamp.millis)), \(c.lastUsedAt.map(Timestamp.millis)))
                """, false
            )
        case .revokeOperatorCredential(let tenantId, let credentialId, let at):
            let millis = Timestamp.millis(at)
            return (
                """
                UPDATE operator_credentials SET revoked_at_ms = \(millis)
                WHERE tenant_id = \(tenantId) AND id = \(credentialId)
                    AND (revoked_at_ms IS NULL OR revoked_at_ms > \(millis))
                RETURNING id
                """, true
            )
        case .noteCredentialUse(let tenantId, let credentialId, let at):
            let millis = Timestamp.millis(at)
            return (
                """
                WITH agent AS (
                    UPDATE credentials SET last_used_at_ms = \(millis)
                    WHERE tenant_id = \(tenantId) AND id = \(credentialId) RETURNING id
                ), operator AS (
                    UPDATE operator_credentials SET last_used_at_ms = \(millis)
                    WHERE tenant_id = \(tenantId) AND id = \(credentialId) RETURNING id
                )
                SELECT id FROM agent UNION ALL SELECT id FROM operator
                """, true
            )
        case .rotateClientSecret(let tenantId, let agentId, let secretHash, let previousUntil):
            // The previous secret is the current one until this moment; with no overlap it is forgotten at once.
            let until = previousUntil.map(Timestamp.millis)
            return (
                """
                UPDATE agents SET
                    previous_secret_hash = CASE WHEN \(until)::BIGINT IS NULL THEN NULL ELSE client_secret_hash END,
                    previous_secret_until_ms = \(until), client_secret_hash = \(secretHash)
                WHERE tenant_id = \(tenantId) AND id = \(agentId) RETURNING id
                """, true
            )
        case .setSessionTimeouts(let tenantId, let idleAfterMs, let sessionTimeoutMs):
            let key = SessionTimeoutsSetting.key(tenantId)
            let value = SessionTimeoutsSetting.text(idleAfterMs: idleAfterMs, sessionTimeoutMs: sessionTimeoutMs)
            return (
                """
                INSERT INTO settings(key, value) VALUES (\(key), \(value))
                ON CONFLICT(key) DO UPDATE SET value = excluded.value
                """, false
            )
        case .openSession(let session):
            return (
                """
                INSERT INTO sessions(tenant_id, id, agent_id, team_id, customer_id, opened_at_ms, metadata)
                VALUES (\(session.tenantId), \(session.id), \(session.agentId), \(session.teamId),
                    \(session.customerId), \(Timestamp.millis(session.openedAt)), \(session.metadata))
                ON CONFLICT (tenant_id, id) DO NOTHING RETURNING id
                """, true
            )
        case .closeSession(let tenantId, let id, let closedAt, let outcome, let totals):
            return (
                """
                UPDATE sessions SET closed_at_ms = \(Timestamp.millis(closedAt)), outcome = \(outcome.rawValue),
                    calls = \(totals.calls), input_tokens = \(totals.inputTokens),
                    output_tokens = \(totals.outputTokens), reasoning_tokens = \(totals.reasoningTokens),
                    duration_ms = \(totals.durationMs), cost_nanos = \(totals.cost.nanos),
                    provider_cost_nanos = \(totals.providerCost.nanos), errors = \(totals.errors),
                    currency = \(totals.currency),
                    last_call_at_ms = (
                        SELECT MAX(c.at_ms) FROM charges c
                        WHERE c.tenant_id = sessions.tenant_id AND c.agent_id = sessions.agent_id
                            AND c.at_ms >= sessions.opened_at_ms AND c.session_id = sessions.id)
                WHERE tenant_id = \(tenantId) AND id = \(id) AND closed_at_ms IS NULL RETURNING id
                """, true
            )
        case .finishReservation(let tenantId, let id, let state, let receiptId):
            return (
                """
                UPDATE reservations SET state = \(state.rawValue), receipt_id = \(receiptId)
                WHERE tenant_id = \(tenantId) AND id = \(id) AND state = 'held' RETURNING id
                """, true
            )
        case .answerOnly:
            return (nil, false)
        }
    }

    // MARK: ledger

    public func commit(_ entries: [LedgerEntry]) async throws(StorageError) -> [CommitOutcome] {
        guard !entries.isEmpty else { return [] }
        // Within one group a key counts once: the first entry carries it, later ones are its duplicates.
        var firstIndexByKey: [String: Int] = [:]
        for (index, entry) in entries.enumerated() {
            let key = entry.idempotency.tenantId + "\u{0}" + entry.idempotency.key
            if firstIndexByKey[key] == nil { firstIndexByKey[key] = index }
        }
        let candidates = firstIndexByKey.values.sorted().map { entries[$0] }
        let i = candidates.map(\.idempotency)
        let firstIndex = firstIndexByKey
        return try await run { connection, logger in
            try await connection.withTransaction(logger: logger) { connection in
                // Arrays, one per column, unnested into rows: a few statements per group, whatever its size.
                var inserted = Set<String>()
                let keys = try await connection.query(
                    """
                    INSERT INTO idempotency(tenant_id, key, method, params, result, created_at_ms)
                    SELECT * FROM UNNEST(\(i.map(\.tenantId)), \(i.map(\.key)), \(i.map(\.method)), \(i.map(\.params)),
                        \(i.map(\.result)), \(i.map { Timestamp.millis($0.createdAt) }))
                    ON CONFLICT (tenant_id, key) DO NOTHING
                    RETURNING tenant_id, key
                    """, logger: logger)
                for try await (tenant, key) in keys.decode((String, String).self) {
                    inserted.insert(tenant + "\u{0}" + key)
                }
                // Outcomes in entry order: a duplicate found early makes the entries priced after it stale
                // (`PricingStream`), and a stale entry gives its key back and writes no charge.
                var outcomes: [CommitOutcome?] = []
                var stale: [IdempotencyRecord] = []
                for (index, entry) in entries.enumerated() {
                    let key = entry.idempotency.tenantId + "\u{0}" + entry.idempotency.key
                    if inserted.contains(key), firstIndex[key] == index {
                        if entry.isStale {
                            stale.append(entry.idempotency)
                            outcomes.append(.stale)
                        } else {
                            outcomes.append(.recorded)
                        }
                    } else {
                        // Already stored, or first written by an earlier entry of this very group.
                        entry.notRecorded()
                        outcomes.append(nil)
                    }
                }
                if !stale.isEmpty {
                    try await connection.query(
                        """
                        DELETE FROM idempotency d USING UNNEST(\(stale.map(\.tenantId)), \(stale.map(\.key))) AS s(t, k)
                        WHERE d.tenant_id = s.t AND d.key = s.k
                        """, logger: logger)
                }
                let recorded = zip(entries, outcomes).filter { $0.1 == .recorded }.map(\.0)
                let settling = recorded.filter { $0.settles != nil }
                if !settling.isEmpty {
                    try await connection.query(
                        """
                        UPDATE reservations r SET state = 'committed', receipt_id = s.receipt
                        FROM UNNEST(\(settling.map(\.charge.tenantId)), \(settling.map { $0.settles ?? "" }),
                            \(settling.map(\.charge.receiptId))) AS s(tenant, id, receipt)
                        WHERE r.tenant_id = s.tenant AND r.id = s.id AND r.state = 'held'
                        """, logger: logger)
                }
                let c = recorded.map(\.charge)
                if !c.isEmpty {
                    try await connection.query(
                        """
                        INSERT INTO charges(tenant_id, receipt_id, customer_id, team_id, agent_id, credential_id,
                            session_id, subscription_id, plan_id, plan_version, tool, quantity, input_tokens,
                            output_tokens, reasoning_tokens, duration_ms, status, cost_nanos, provider_cost_nanos,
                            currency, idempotency_key, at_ms, day, model, invocation_id, parent_invocation_id,
                            retry_count, parallel, occurred_at_ms)
                        SELECT t, r, cu, te, ag, cr, se, su, pl, pv, tl, q, it, ot, rt, du, NULLIF(st, ''), co, pc, cy,
                            ik, at, dy, mo, iv, pa, rc, pr, NULLIF(oa, at)
                        FROM UNNEST(\(c.map(\.tenantId)), \(c.map(\.receiptId)), \(c.map(\.customerId)),
                            \(c.map(\.teamId)), \(c.map(\.agentId)), \(c.map(\.credentialId)), \(c.map(\.sessionId)),
                            \(c.map(\.subscriptionId)), \(c.map(\.planId)), \(c.map { Int64($0.planVersion) }),
                            \(c.map(\.tool)), \(c.map(\.quantity)), \(c.map(\.inputTokens)), \(c.map(\.outputTokens)),
                            \(c.map(\.reasoningTokens)), \(c.map(\.durationMs)), \(c.map { $0.status ?? "" }),
                            \(c.map(\.cost.nanos)), \(c.map(\.providerCost.nanos)), \(c.map(\.currency)),
                            \(c.map(\.idempotencyKey)), \(c.map { Timestamp.millis($0.at) }),
                            \(c.map { PeriodCalendar.dayIndex($0.at) }), \(c.map { $0.model ?? "" }),
                            \(c.map(\.invocationId)), \(c.map { $0.parentInvocationId ?? "" }), \(c.map(\.retryCount)),
                            \(c.map(\.parallel)), \(c.map { Timestamp.millis($0.occurredAt ?? $0.at) }))
                        AS u(
                            t, r, cu, te, ag, cr, se, su, pl, pv, tl, q, it, ot, rt, du, st, co, pc, cy, ik, at, dy, mo,
                            iv, pa, rc, pr, oa)
                        """, logger: logger)
                }
                // Keys that were already stored answer with their stored record.
                var stored: [String: IdempotencyRecord] = [:]
                let missing = entries.filter {
                    !inserted.contains($0.idempotency.tenantId + "\u{0}" + $0.idempotency.key)
                }
                .map(\.idempotency)
                if !missing.isEmpty {
                    let rows = try await connection.query(
                        """
                        SELECT d.tenant_id, d.key, d.method, d.params, d.result, d.created_at_ms
                        FROM idempotency d JOIN UNNEST(\(missing.map(\.tenantId)), \(missing.map(\.key))) AS m(t, k)
                            ON d.tenant_id = m.t AND d.key = m.k
                        """, logger: logger)
                    for try await (tenant, key, method, params, result, created) in rows.decode(
                        (String, String, String, String, String, Int64).self)
                    {
                        stored[tenant + "\u{0}" + key] = IdempotencyRecord(
                            tenantId: tenant, key: key, method: method, params: params, result: result,
                            createdAt: Timestamp.date(millis: created))
                    }
                }
                return try zip(entries.indices, outcomes).map { index, outcome throws(StorageError) -> CommitOutcome in
                    if let outcome { return outcome }
                    let key = entries[index].idempotency.tenantId + "\u{0}" + entries[index].idempotency.key
                    if inserted.contains(key) {
                        // A second entry with a key first written in this very group.
                        return .duplicate(entries[firstIndex[key]!].idempotency)
                    }
                    guard let record = stored[key] else {
                        throw StorageError.backend("idempotency key neither inserted nor found")
                    }
                    return .duplicate(record)
                }
            }
        }
    }

    public func idempotencyRecord(tenantId: String, key: String) async throws(StorageError) -> IdempotencyRecord? {
        try await rows(
            """
            SELECT method, params, result, created_at_ms FROM idempotency WHERE tenant_id = \(tenantId) AND key = \(key)
            """, as: (String, String, String, Int64).self
        ).first.map {
            IdempotencyRecord(
                tenantId: tenantId, key: key, method: $0.0, params: $0.1, result: $0.2,
                createdAt: Timestamp.date(millis: $0.3))
        }
    }

    private typealias SessionColumns = (
        String, String, String, String, Int64, Int64?, String?, String?,
        Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64?, String?
    )

    /// Sessions with their totals: the stored final record once closed, summed from the charges while open.
    private func sessionRows(tenantId: String, id: String?, _ selection: SessionSelection, limit: Int)
        async throws(StorageError) -> [SessionRecord]
    {
        let query: PostgresQuery = """
            SELECT s.id, s.agent_id, s.team_id, s.customer_id, s.opened_at_ms, s.closed_at_ms, s.outcome, s.metadata,
                CASE WHEN s.closed_at_ms IS NULL THEN COALESCE(a.calls, 0) ELSE s.calls END,
                CASE WHEN s.closed_at_ms IS NULL THEN COALESCE(a.input_tokens, 0) ELSE s.input_tokens END,
                CASE WHEN s.closed_at_ms IS NULL THEN COALESCE(a.output_tokens, 0) ELSE s.output_tokens END,
                CASE WHEN s.closed_at_ms IS NULL THEN COALESCE(a.reasoning_tokens, 0) ELSE s.reasoning_tokens END,
                CASE WHEN s.closed_at_ms IS NULL THEN COALESCE(a.duration_ms, 0) ELSE s.duration_ms END,
                CASE WHEN s.closed_at_ms IS NULL THEN COALESCE(a.cost_nanos, 0) ELSE s.cost_nanos END,
                CASE WHEN s.closed_at_ms IS NULL THEN COALESCE(a.provider_cost_nanos, 0) ELSE s.provider_cost_nanos END,
                CASE WHEN s.closed_at_ms IS NULL THEN COALESCE(a.errors, 0) ELSE s.errors END,
                CASE WHEN s.closed_at_ms IS NULL THEN a.last_at ELSE s.last_call_at_ms END,
                CASE WHEN s.closed_at_ms IS NULL THEN a.currency ELSE s.currency END
            FROM (
                -- The page first: only its open sessions are summed from their charges.
                SELECT * FROM sessions
                WHERE tenant_id = \(tenantId) AND (\(id)::TEXT IS NULL OR id = \(id))
                    AND (\(selection.includesOpen) OR closed_at_ms IS NOT NULL)
                    AND (\(selection.includesClosed) OR closed_at_ms IS NULL)
                ORDER BY opened_at_ms DESC, id DESC LIMIT \(Int64(limit))
            ) s LEFT JOIN LATERAL (
                SELECT SUM(CASE WHEN quantity > 0 THEN 1 ELSE 0 END)::BIGINT AS calls,
                    SUM(input_tokens)::BIGINT AS input_tokens,
                    SUM(output_tokens)::BIGINT AS output_tokens, SUM(reasoning_tokens)::BIGINT AS reasoning_tokens,
                    SUM(duration_ms)::BIGINT AS duration_ms, SUM(cost_nanos)::BIGINT AS cost_nanos,
                    SUM(provider_cost_nanos)::BIGINT AS provider_cost_nanos,
                    SUM(CASE WHEN status IS NOT NULL AND status <> 'SUCCESS' THEN 1 ELSE 0 END)::BIGINT AS errors,
                    MAX(at_ms) AS last_at, MAX(currency) AS currency
                FROM charges c WHERE c.tenant_id = s.tenant_id AND c.agent_id = s.agent_id AND c.at_ms >= s.opened_at_ms
                    AND c.session_id = s.id AND s.closed_at_ms IS NULL
            ) a ON TRUE
            ORDER BY s.opened_at_ms DESC, s.id DESC
            """
        return try await rows(query, as: SessionColumns.self).map { row in
            var totals = SessionTotals()
            totals.calls = row.8
            totals.inputTokens = row.9
            totals.outputTokens = row.10
            totals.reasoningTokens = row.11
            totals.durationMs = row.12
            totals.cost = Money(nanos: row.13)
            totals.providerCost = Money(nanos: row.14)
            totals.errors = row.15
            totals.currency = row.17
            return SessionRecord(
                tenantId: tenantId, id: row.0, agentId: row.1, teamId: row.2, customerId: row.3,
                openedAt: Timestamp.date(millis: row.4), closedAt: row.5.map(Timestamp.date(millis:)),
                outcome: row.6.flatMap(SessionOutcome.init(rawValue:)), metadata: row.7,
                lastCallAt: row.16.map(Timestamp.date(millis:)), totals: totals)
        }
    }

    public func session(tenantId: String, id: String) async throws(StorageError) -> SessionRecord? {
        try await sessionRows(tenantId: tenantId, id: id, .all, limit: 1).first
    }

    public func sessions(tenantId: String, _ selection: SessionSelection, limit: Int) async throws(StorageError)
        -> [SessionRecord]
    {
        try await sessionRows(tenantId: tenantId, id: nil, selection, limit: limit)
    }

    private typealias ReservationColumns = (
        String, String, String, String, String, String, String, String, Int64, String,
        Int64, Int64, String, String?, String, Int64, Bool, String?
    )

    private func reservations(_ query: PostgresQuery, tenantId: String) async throws(StorageError)
        -> [ReservationRecord]
    {
        try await rows(query, as: ReservationColumns.self).map { row in
            var record = ReservationRecord(
                tenantId: tenantId, id: row.0, idempotencyKey: row.1,
                path: ChargePath(
                    customerId: row.2, teamId: row.3, agentId: row.4, sessionId: row.6, credentialId: row.5),
                tool: row.7, held: Money(nanos: row.8), currency: row.9, createdAt: Timestamp.date(millis: row.10),
                expiresAt: Timestamp.date(millis: row.11), state: ReservationRecord.State(rawValue: row.12) ?? .expired,
                receiptId: row.13)
            record.parentInvocationId = row.14.isEmpty ? nil : row.14
            record.retryCount = row.15
            record.parallel = row.16
            record.productId = row.17
            return record
        }
    }

    public func insertReservation(_ reservation: ReservationRecord, idempotency i: IdempotencyRecord)
        async throws(StorageError) -> IdempotencyRecord?
    {
        let r = reservation
        struct LegacyHold: Error {}
        return try await run { connection, logger in
            do {
                return try await connection.withTransaction(logger: logger) { connection -> IdempotencyRecord? in
                    // The key first: one namespace with the ledger's charges, whose keys are in the same table.
                    let claimed = try await connection.query(
                        """
                        INSERT INTO idempotency(tenant_id, key, method, params, result, created_at_ms)
                        VALUES (\(i.tenantId), \(i.key), \(i.method), \(i.params), \(i.result),
                            \(Timestamp.millis(i.createdAt)))
                        ON CONFLICT (tenant_id, key) DO NOTHING RETURNING key
                        """, logger: logger)
                    var inserted = false
                    for try await _ in claimed.decode(String.self) { inserted = true }
                    guard inserted else {
                        let stored = try await connection.query(
                            """
                            SELECT method, params, result, created_at_ms FROM idempotency
                            WHERE tenant_id = \(i.tenantId) AND key = \(i.key)
                            """, logger: logger)
                        let rows = stored.decode((String, String, String, Int64).self)
                        for try await (method, params, result, at) in rows {
                            return IdempotencyRecord(
                                tenantId: i.tenantId, key: i.key, method: method, params: params,
                                result: result, createdAt: Timestamp.date(millis: at))
                        }
                        throw StorageError.backend("idempotency key neither inserted nor found")
                    }
                    let held = try await connection.query(
                        """
                        INSERT INTO reservations(tenant_id, id, idempotency_key, customer_id, team_id, agent_id,
                            credential_id, session_id, tool, held_nanos, currency, created_at_ms, expires_at_ms, state,
                            receipt_id, parent_invocation_id, retry_count, parallel, product_id)
                        VALUES (\(r.tenantId), \(r.id), \(r.idempotencyKey), \(r.path.customerId), \(r.path.teamId),
                                \(r.path.agentId), \(r.path.credentialId), \(r.path.sessionId), \(r.tool),
                                    \(r.held.nanos),
                                \(r.currency), \(Timestamp.millis(r.createdAt)), \(Timestamp.millis(r.expiresAt)),
                                \(r.state.rawValue), \(r.receiptId), \(r.parentInvocationId ?? ""), \(r.retryCount),
                                \(r.parallel), \(r.productId))
                        ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING id
                        """, logger: logger)
                    for try await _ in held.decode(String.self) { return nil }
                    throw LegacyHold()
                }
            } catch is LegacyHold {
                // A hold made before its key went to the key table (rolled back above): no answer stored to replay.
                return IdempotencyRecord(
                    tenantId: r.tenantId, key: r.idempotencyKey, method: "meter.authorize",
                    params: "", result: "", createdAt: r.createdAt)
            }
        }
    }

    public func reservation(tenantId: String, id: String) async throws(StorageError) -> ReservationRecord? {
        try await reservations(
            """
            SELECT id, idempotency_key, customer_id, team_id, agent_id, credential_id, session_id, tool, held_nanos,
                currency, created_at_ms, expires_at_ms, state, receipt_id, parent_invocation_id, retry_count, parallel,
                product_id
            FROM reservations WHERE tenant_id = \(tenantId) AND id = \(id)
            """, tenantId: tenantId
        ).first
    }

    public func heldReservations(tenantId: String) async throws(StorageError) -> [ReservationRecord] {
        try await reservations(
            """
            SELECT id, idempotency_key, customer_id, team_id, agent_id, credential_id, session_id, tool, held_nanos,
                currency, created_at_ms, expires_at_ms, state, receipt_id, parent_invocation_id, retry_count, parallel,
                product_id
            FROM reservations WHERE tenant_id = \(tenantId) AND state = 'held' ORDER BY id
            """, tenantId: tenantId)
    }

    public func insertAlert(_ alert: AlertRecord) async throws(StorageError) {
        try await execute(
            """
            INSERT INTO alerts(tenant_id, id, kind, at_ms, body)
            VALUES (\(alert.tenantId), \(alert.id), \(alert.kind), \(Timestamp.millis(alert.at)), \(alert.body))
            """)
    }

    public func alerts(tenantId: String, kinds: [String]?, limit: Int) async throws(StorageError) -> [AlertRecord] {
        try await rows(
            """
            SELECT id, kind, at_ms, body FROM alerts
            WHERE tenant_id = \(tenantId) AND (\(kinds == nil) OR kind = ANY(\(kinds ?? [])))
            ORDER BY at_ms DESC, id DESC LIMIT \(Int64(limit))
            """, as: (String, String, Int64, String).self
        ).map {
            AlertRecord(tenantId: tenantId, id: $0.0, kind: $0.1, at: Timestamp.date(millis: $0.2), body: $0.3)
        }
    }

    public func charge(tenantId: String, receiptId: String) async throws(StorageError) -> ChargeRecord? {
        try await rows(
            "SELECT row_to_json(c)::text FROM charges c WHERE tenant_id = \(tenantId) AND receipt_id = \(receiptId)",
            as: String.self
        ).map(Self.chargeRecord).first
    }

    public func charges(tenantId: String, customerId: String, from: Date, to: Date) async throws(StorageError)
        -> [ChargeRecord]
    {
        // In time order (within one millisecond, by receipt: only the totals of such calls are certain to match).
        try await rows(
            """
            SELECT row_to_json(c)::text FROM charges c WHERE tenant_id = \(tenantId) AND customer_id = \(customerId)
                AND at_ms >= \(Timestamp.millis(from)) AND at_ms < \(Timestamp.millis(to))
            ORDER BY at_ms, receipt_id
            """, as: String.self
        ).map(Self.chargeRecord)
    }

    public func charges(tenantId: String, receiptIds: [String]) async throws(StorageError) -> [ChargeRecord] {
        guard !receiptIds.isEmpty else { return [] }
        let found = try await rows(
            """
            SELECT row_to_json(c)::text FROM charges c WHERE tenant_id = \(tenantId)
                AND receipt_id = ANY(\(receiptIds))
            """, as: String.self
        ).map(Self.chargeRecord)
        let byReceipt = Dictionary(found.map { ($0.receiptId, $0) }, uniquingKeysWith: { first, _ in first })
        return receiptIds.compactMap { byReceipt[$0] }
    }

    public func updateInvoice(_ invoice: InvoiceRecord, expecting expected: String) async throws(StorageError) -> Bool {
        try await run { connection, logger in
            try await connection.withTransaction(logger: logger) { connection -> Bool in
                let rows = try await connection.query(
                    """
                    UPDATE invoices SET status = \(invoice.status), document = \(invoice.document)
                    WHERE tenant_id = \(invoice.tenantId) AND id = \(invoice.id) AND status = \(expected)
                    RETURNING id
                    """, logger: logger)
                var updated = false
                for try await _ in rows { updated = true }
                guard updated else { return false }
                if let kind = invoice.stripeOutbox {
                    try await connection.query(Self.enqueue(kind, of: invoice), logger: logger)
                }
                return true
            }
        }
    }

    public func insertInvoice(_ invoice: InvoiceRecord, lineReceipts: [InvoiceLineReceipt])
        async throws(StorageError) -> InvoiceRecord
    {
        let inserted = try await run { connection, logger in
            try await connection.withTransaction(logger: logger) { connection -> Bool in
                let rows = try await connection.query(
                    """
                    INSERT INTO invoices(tenant_id, id, customer_id, subscription_id, period_start_ms, period_end_ms,
                        status, document, created_at_ms)
                    VALUES (\(invoice.tenantId), \(invoice.id), \(invoice.customerId), \(invoice.subscriptionId),
                        \(Timestamp.millis(invoice.periodStart)), \(Timestamp.millis(invoice.periodEnd)),
                        \(invoice.status), \(invoice.document), \(Timestamp.millis(invoice.createdAt)))
                    ON CONFLICT (tenant_id, subscription_id, period_start_ms) DO NOTHING
                    RETURNING id
                    """, logger: logger)
                var written = false
                for try await _ in rows { written = true }
                guard written else { return false }
                if !lineReceipts.isEmpty {
                    try await connection.query(
                        """
                        INSERT INTO invoice_line_receipts(tenant_id, invoice_id, line, receipt_id)
                        SELECT \(invoice.tenantId), \(invoice.id), l, r
                        FROM UNNEST(\(lineReceipts.map { Int64($0.line) }), \(lineReceipts.map(\.receiptId)))
                            AS u(l, r)
                        """, logger: logger)
                }
                if let kind = invoice.stripeOutbox {
                    try await connection.query(Self.enqueue(kind, of: invoice), logger: logger)
                }
                let draws = invoice.creditApplications
                if !draws.isEmpty {
                    try await connection.query(
                        """
                        INSERT INTO credit_applications(tenant_id, invoice_id, grant_id, amount_nanos)
                        SELECT \(invoice.tenantId), \(invoice.id), g, a
                        FROM UNNEST(\(draws.map(\.grantId)), \(draws.map(\.amount.nanos))) AS u(g, a)
                        """, logger: logger)
                }
                return true
            }
        }
        if inserted { return invoice }
        guard
            let existing = try await invoiceRows(
                """
                SELECT \(unescaped: Self.invoiceColumns) FROM invoices WHERE tenant_id = \(invoice.tenantId)
                    AND subscription_id = \(invoice.subscriptionId)
                    AND period_start_ms = \(Timestamp.millis(invoice.periodStart))
                """, tenantId: invoice.tenantId
            ).first
        else { throw .backend("the invoice of subscription \(invoice.subscriptionId) vanished") }
        return existing
    }

    public func invoice(tenantId: String, id: String) async throws(StorageError) -> InvoiceRecord? {
        try await invoiceRows(
            """
            SELECT \(unescaped: Self.invoiceColumns) FROM invoices WHERE tenant_id = \(tenantId) AND id = \(id)
            """, tenantId: tenantId
        ).first
    }

    public func invoices(tenantId: String, customerId: String?, subscriptionId: String?, limit: Int)
        async throws(StorageError) -> [InvoiceRecord]
    {
        try await invoiceRows(
            """
            SELECT \(unescaped: Self.invoiceColumns) FROM invoices WHERE tenant_id = \(tenantId)
                AND (\(customerId)::text IS NULL OR customer_id = \(customerId))
                AND (\(subscriptionId)::text IS NULL OR subscription_id = \(subscriptionId))
            ORDER BY period_start_ms DESC, id DESC LIMIT \(Int64(limit))
            """, tenantId: tenantId)
    }

    private static func enqueue(_ kind: OutboxRecord.Kind, of invoice: InvoiceRecord) -> PostgresQuery {
        let at = Timestamp.millis(invoice.createdAt)
        return """
            INSERT INTO stripe_outbox(tenant_id, invoice_id, kind, state, progress, attempts, next_attempt_at_ms,
                created_at_ms, updated_at_ms)
            VALUES (\(invoice.tenantId), \(invoice.id), \(kind.rawValue), 'pending', '{}', 0, \(at), \(at), \(at))
            ON CONFLICT DO NOTHING
            """
    }

    private typealias OutboxColumns = (String, String, String, String, String, Int64, Int64, String?, Int64, Int64)
    private static let outboxColumns =
        "tenant_id, invoice_id, kind, state, progress, attempts, next_attempt_at_ms, last_error, created_at_ms, "
        + "updated_at_ms"

    private static func outboxRecord(_ row: OutboxColumns) throws(StorageError) -> OutboxRecord {
        guard let kind = OutboxRecord.Kind(rawValue: row.2), let state = OutboxRecord.State(rawValue: row.3) else {
            throw .backend("an outbox row with an unknown kind or state")
        }
        return OutboxRecord(
            tenantId: row.0, invoiceId: row.1, kind: kind, state: state, progress: row.4, attempts: Int(row.5),
            nextAttemptAt: Timestamp.date(millis: row.6), lastError: row.7, createdAt: Timestamp.date(millis: row.8),
            updatedAt: Timestamp.date(millis: row.9))
    }

    public func outbox(tenantId: String, invoiceId: String) async throws(StorageError) -> [OutboxRecord] {
        try await rows(
            """
            SELECT \(unescaped: Self.outboxColumns) FROM stripe_outbox
            WHERE tenant_id = \(tenantId) AND invoice_id = \(invoiceId) ORDER BY kind DESC
            """, as: OutboxColumns.self
        ).map { row throws(StorageError) in try Self.outboxRecord(row) }
    }

    public func dueOutbox(at date: Date, limit: Int) async throws(StorageError) -> [OutboxRecord] {
        try await rows(
            """
            SELECT \(unescaped: Self.outboxColumns) FROM stripe_outbox
            WHERE state = 'pending' AND next_attempt_at_ms <= \(Timestamp.millis(date))
            ORDER BY next_attempt_at_ms, created_at_ms, invoice_id LIMIT \(Int64(limit))
            """, as: OutboxColumns.self
        ).map { row throws(StorageError) in try Self.outboxRecord(row) }
    }

    public func updateOutbox(_ record: OutboxRecord) async throws(StorageError) {
        _ = try await rows(
            """
            UPDATE stripe_outbox SET state = \(record.state.rawValue), progress = \(record.progress),
                attempts = \(Int64(record.attempts)), next_attempt_at_ms = \(Timestamp.millis(record.nextAttemptAt)),
                last_error = \(record.lastError), updated_at_ms = \(Timestamp.millis(record.updatedAt))
            WHERE tenant_id = \(record.tenantId) AND invoice_id = \(record.invoiceId) AND kind = \(record.kind.rawValue)
            RETURNING invoice_id
            """, as: String.self)
    }

    public func stripeCustomer(tenantId: String, customerId: String) async throws(StorageError) -> String? {
        try await rows(
            """
            SELECT stripe_customer_id FROM stripe_customers
            WHERE tenant_id = \(tenantId) AND customer_id = \(customerId)
            """, as: String.self
        ).first
    }

    public func putStripeCustomer(tenantId: String, customerId: String, stripeCustomerId: String)
        async throws(StorageError)
    {
        _ = try await rows(
            """
            INSERT INTO stripe_customers(tenant_id, customer_id, stripe_customer_id)
            VALUES (\(tenantId), \(customerId), \(stripeCustomerId))
            ON CONFLICT DO NOTHING RETURNING customer_id
            """, as: String.self)
    }

    public func creditApplied(tenantId: String, customerId: String?) async throws(StorageError) -> [String: Money] {
        let rows = try await rows(
            """
            SELECT a.grant_id, SUM(a.amount_nanos)::bigint FROM credit_applications a
            JOIN invoices i ON i.tenant_id = a.tenant_id AND i.id = a.invoice_id
            WHERE a.tenant_id = \(tenantId) AND i.status <> 'void'
                AND (\(customerId)::text IS NULL OR i.customer_id = \(customerId))
            GROUP BY a.grant_id
            """, as: (String, Int64).self)
        return Dictionary(uniqueKeysWithValues: rows.map { ($0.0, Money(nanos: $0.1)) })
    }

    public func invoiceLineReceipts(tenantId: String, invoiceId: String, line: Int, after: String?, limit: Int)
        async throws(StorageError) -> [String]
    {
        try await rows(
            """
            SELECT receipt_id FROM invoice_line_receipts
            WHERE tenant_id = \(tenantId) AND invoice_id = \(invoiceId) AND line = \(Int64(line))
                AND receipt_id > \(after ?? "")
            ORDER BY receipt_id LIMIT \(Int64(limit))
            """, as: String.self)
    }

    private static let invoiceColumns =
        "id, customer_id, subscription_id, period_start_ms, period_end_ms, status, document, created_at_ms"

    private func invoiceRows(_ query: PostgresQuery, tenantId: String) async throws(StorageError) -> [InvoiceRecord] {
        try await rows(query, as: (String, String, String, Int64, Int64, String, String, Int64).self).map {
            InvoiceRecord(
                tenantId: tenantId, id: $0.0, customerId: $0.1, subscriptionId: $0.2,
                periodStart: Timestamp.date(millis: $0.3), periodEnd: Timestamp.date(millis: $0.4), status: $0.5,
                document: $0.6, createdAt: Timestamp.date(millis: $0.7))
        }
    }

    /// A charge from its whole row as JSON (`row_to_json`), read by `ChargeRecord(storedColumns:)`.
    private static func chargeRecord(_ text: String) throws(StorageError) -> ChargeRecord {
        guard let object = try? JSONCodec.parse(Array(text.utf8)).objectValue,
            let charge = ChargeRecord(storedColumns: object)
        else { throw StorageError.backend("a charge row cannot be read") }
        return charge
    }

    public func charges(tenantId: String, subscriptionId: String, from: Date) async throws(StorageError) -> [RatingRow]
    {
        try await rows(
            """
            SELECT plan_id, plan_version, tool, quantity, input_tokens, output_tokens, reasoning_tokens, duration_ms,
                status, provider_cost_nanos, agent_id, session_id, cost_nanos, at_ms
            FROM charges WHERE tenant_id = \(tenantId) AND subscription_id = \(subscriptionId) AND at_ms >=
                \(Timestamp.millis(from)) AND customer_id = (SELECT customer_id FROM subscriptions WHERE tenant_id =
                \(tenantId) AND id = \(subscriptionId))
            ORDER BY at_ms, receipt_id
            """,
            as: (String, Int, String, Int64, Int64, Int64, Int64, Int64, String?, Int64, String, String, Int64, Int64)
                .self
        ).map {
            RatingRow(
                planId: $0.0, planVersion: $0.1, tool: $0.2, quantity: $0.3, inputTokens: $0.4, outputTokens: $0.5,
                reasoningTokens: $0.6, durationMs: $0.7, status: $0.8, providerCost: Money(nanos: $0.9),
                agentId: $0.10, sessionId: $0.11, cost: Money(nanos: $0.12), at: Timestamp.date(millis: $0.13))
        }
    }

    public func spend(tenantId: String, windows: SpendWindows) async throws(StorageError) -> [SpendRow] {
        // Each customer's window starts, as three parallel arrays joined to the charges.
        let customers = Array(windows.byCustomer.keys)
        let monthStarts = customers.map { Timestamp.millis(windows.of($0).month.start) }
        let dayStarts = customers.map { Timestamp.millis(windows.of($0).day.start) }
        let fallbackMonth = Timestamp.millis(windows.fallback.month.start)
        let fallbackDay = Timestamp.millis(windows.fallback.day.start)
        var result: [SpendRow] = []
        for (scope, column) in SpendColumns.all {
            let rows = try await rows(
                """
                WITH w AS (
                    SELECT * FROM unnest(\(customers)::TEXT[], \(monthStarts)::BIGINT[], \(dayStarts)::BIGINT[])
                        AS w(customer_id, month_start, day_start))
                SELECT c.\(unescaped: column), c.customer_id, SUM(c.cost_nanos)::BIGINT,
                    SUM(CASE WHEN c.at_ms >= COALESCE(w.month_start, \(fallbackMonth)) THEN c.cost_nanos ELSE 0 END)
                        ::BIGINT,
                    SUM(CASE WHEN c.at_ms >= COALESCE(w.day_start, \(fallbackDay)) THEN c.cost_nanos ELSE 0 END)::BIGINT
                FROM charges c LEFT JOIN w ON w.customer_id = c.customer_id
                WHERE c.tenant_id = \(tenantId) GROUP BY c.\(unescaped: column), c.customer_id
                """, as: (String, String, Int64, Int64, Int64).self)
            result += rows.map {
                SpendRow(
                    target: ScopeRef(scope, $0.0), customerId: $0.1, lifetime: Money(nanos: $0.2),
                    month: Money(nanos: $0.3), day: Money(nanos: $0.4))
            }
        }
        return result
    }

    public func usage(tenantId: String, filter: UsageFilter, groupBy: [UsageGroup]) async throws(StorageError)
        -> [UsageRow]
    {
        let query = UsageSQL(tenantId: tenantId, filter: filter, groupBy: groupBy, placeholder: { "$\($0)" })
        var binds = PostgresBindings()
        for argument in query.arguments {
            switch argument {
            case .text(let text): binds.append(text)
            case .integer(let number): binds.append(number)
            }
        }
        // Keys come back as text whatever their column type, so one decode shape serves every grouping.
        let keyCasts = (0..<groupBy.count).map { "k\($0)::TEXT" }
        let sql = """
            SELECT
                \((keyCasts + ["currency", "calls", "quantity::BIGINT", "input_tokens::BIGINT", "output_tokens::BIGINT",
                                  "cost::BIGINT", "provider_cost::BIGINT", "retries::BIGINT"]).joined(separator: ", "))
            FROM (\(query.sql)) AS grouped
            """
        let grouped = PostgresQuery(unsafeSQL: sql, binds: binds)
        return try await run { connection, logger in
            var result: [UsageRow] = []
            for try await row in try await connection.query(grouped, logger: logger) {
                var cells = row.makeIterator()
                var keys: [String] = []
                for group in groupBy {
                    let text = try cells.next()!.decode(String.self)
                    keys.append(group == .day ? UsageQuery.dayString(Int64(text) ?? 0) : text)
                }
                let currency = try cells.next()!.decode(String.self)
                var numbers: [Int64] = []
                while let cell = cells.next() { numbers.append(try cell.decode(Int64.self)) }
                result.append(
                    query.row(
                        keys: keys, currency: currency, calls: numbers[0], quantity: numbers[1],
                        inputTokens: numbers[2], outputTokens: numbers[3], cost: numbers[4],
                        providerCost: numbers[5], retries: numbers[6]))
            }
            return result
        }
    }
}
