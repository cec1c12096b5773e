import Foundation
import GRDB
import Logging
import TollgateCore
import TollgateJSON
import TollgateStorage

/// The embedded default store: one SQLite file in WAL mode with `synchronous=FULL`, so that a committed
/// transaction survives power loss, not just a crash of the process. Writes are serialised by GRDB's
/// writer queue; reads run concurrently on the pool's readers.
public final class SQLiteStore: TollgateStore {
    /// Internal rather than private so that tests can make a COMMIT fail (`SQLiteLedgerKeysTests`).
    let pool: DatabasePool
    let checkpointer: WALCheckpointer
    let keys: LedgerKeys
    private let owner: OwnerLock
    public let path: String

    /// The store's tuning: its keys and defaults, written once.
    public struct Configuration: ComponentConfiguration {
        /// How many frames (pages) the WAL may hold before the writer catches up on checkpointing itself;
        /// 4,096 frames is 16 MiB at SQLite's default page size.
        public var walFramesMax = 4096
        /// The least time from one background checkpoint to the next, in milliseconds.
        public var checkpointPauseMs = 10
        /// When pending idempotency keys move into their index, and how many at a time (see `LedgerKeys`).
        public var keysIndexAfter = 1024
        public var keysIndexChunk = 512

        public init() {}

        public static let settings: [Setting<Self>] = [
            Setting(
                "sqliteWalFramesMax", \.walFramesMax,
                "SQLite: pages the write-ahead log may hold before the ledger writer checkpoints it itself (4096 "
                    + "pages is 16 MiB)"),
            Setting(
                "sqliteCheckpointPauseMs", \.checkpointPauseMs,
                "SQLite: the least time between two background checkpoints, in milliseconds"),
            Setting(
                "sqliteKeysIndexAfter", \.keysIndexAfter,
                "SQLite: idempotency keys appended with their charges before the oldest move into the sorted key "
                    + "index"),
            Setting(
                "sqliteKeysIndexChunk", \.keysIndexChunk,
                "SQLite: idempotency keys moved into the key index at a time, at most sqliteKeysIndexAfter"),
        ]

        public func validate() throws(ConfigurationError) {
            try ConfigurationError.check(walFramesMax >= 100, "sqliteWalFramesMax", "at least 100")
            try ConfigurationError.check(checkpointPauseMs >= 0, "sqliteCheckpointPauseMs", "not negative")
            try ConfigurationError.check(keysIndexChunk >= 1, "sqliteKeysIndexChunk", "at least 1")
            try ConfigurationError.check(
                keysIndexAfter >= keysIndexChunk, "sqliteKeysIndexAfter", "at least limits.sqliteKeysIndexChunk")
        }
    }

    /// Opens (creating if needed) the database at `path` and runs pending migrations.
    public init(
        path: String, configuration tuning: Configuration = Configuration(),
        logger: Logger = Logger(label: "tollgate.sqlite")
    ) throws(StorageError) {
        self.path = path
        owner = try OwnerLock(path: path)
        var configuration = GRDB.Configuration()
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            // FULL: every commit is fsynced, so an acknowledged write survives `kill -9` and power loss.
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // 64 MiB of page cache (negative = KiB): the ledger's indexes stay in memory as they grow.
            try db.execute(sql: "PRAGMA cache_size = -65536")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            // GRDB's DatabasePool switches its writer to `synchronous = NORMAL` after `prepareDatabase` when it
            // enables WAL; NORMAL loses the last commits on power loss, so FULL is set again here, on the one
            // writer connection, which keeps it for the life of the pool.
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
            // The writer never checkpoints; `WALCheckpointer` does, beside it (see there for why).
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_autocheckpoint = 0") }
            try SQLiteMigrations.migrator.migrate(pool)
            keys = try pool.read { db in
                try LedgerKeys(db, indexAfter: tuning.keysIndexAfter, indexChunk: tuning.keysIndexChunk)
            }
            checkpointer = try WALCheckpointer(
                path: path, walFramesMax: tuning.walFramesMax, pause: .milliseconds(tuning.checkpointPauseMs),
                logger: logger)
        } catch {
            throw .backend("opening \(path): \(error)")
        }
    }

    public func close() async throws {
        defer { owner.release() }
        try await checkpointer.close()
        try pool.close()
    }

    /// The writer connection's journal mode and `synchronous` level (2 = FULL), read back from SQLite so a
    /// test can prove what commits actually do rather than what was asked for.
    public func writerDurability() async throws(StorageError) -> (journalMode: String, synchronous: Int) {
        try await write { db in
            (
                try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "",
                try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1
            )
        }
    }

    // MARK: helpers

    /// Every write but the ledger's group commits. Like them, it asks for a checkpoint afterwards: the writer's
    /// automatic checkpoint is off, so without this a stream of such writes (sessions, holds, agents) alone
    /// grew the WAL without bound (5 GB for 90,000 holds and agents).
    private func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(StorageError) -> T
    {
        let result: T
        do { result = try await pool.write(body) } catch { throw Self.translate(error) }
        if checkpointer.catchUpNeeded,
            let done = try? await pool.writeWithoutTransaction({ db in try db.checkpoint(.passive) })
        {
            checkpointer.caughtUp(walFrames: done.walFrameCount)
        }
        checkpointer.request()
        return result
    }

    private func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(StorageError) -> T {
        do { return try await pool.read(body) } catch { throw Self.translate(error) }
    }

    static func translate(_ error: any Error) -> StorageError {
        if let error = error as? StorageError { return error }
        if let error = error as? DatabaseError, error.resultCode == .SQLITE_CONSTRAINT {
            return .duplicate(error.message ?? "row")
        }
        return .backend(String(describing: error))
    }

    // MARK: settings and tenants

    public func setting(_ key: String) async throws(StorageError) -> String? {
        try await read { db in
            try String.fetchOne(db, sql: "SELECT value FROM settings WHERE key = ?", arguments: [key])
        }
    }

    public func putSetting(_ key: String, _ value: String) async throws(StorageError) {
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO settings(key, value) VALUES (?, ?)
                    ON CONFLICT(key) DO UPDATE SET value = excluded.value
                    """,
                arguments: [key, value])
        }
    }

    public func insertTenant(_ tenant: TenantRecord, firstOperator: OperatorCredential, tokenHash: String)
        async throws(StorageError)
    {
        try await write { db in
            // operator_token_hash is the first credential's, for the schema's sake: nothing reads it.
            try db.execute(
                sql: "INSERT INTO tenants(id, name, operator_token_hash, created_at_ms) VALUES (?, ?, ?, ?)",
                arguments: [tenant.id, tenant.name, tokenHash, Timestamp.millis(tenant.createdAt)])
            try Self.insertOperator(firstOperator, tokenHash: tokenHash, db)
        }
    }

    private static func insertOperator(_ credential: OperatorCredential, tokenHash: String, _ db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO operator_credentials(tenant_id, id, name, scopes, token_hash, token_prefix, created_at_ms,
                    expires_at_ms, revoked_at_ms, last_used_at_ms)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                credential.tenantId, credential.id, credential.name, credential.scopes.joined(separator: " "),
                tokenHash, credential.tokenPrefix, Timestamp.millis(credential.createdAt),
                credential.expiresAt.map(Timestamp.millis), credential.revokedAt.map(Timestamp.millis),
                credential.lastUsedAt.map(Timestamp.millis),
            ])
    }

    private static func operatorCredential(_ row: Row) -> OperatorCredential {
        let scopes: String = row["scopes"]
        let expires: Int64? = row["expires_at_ms"]
        let revoked: Int64? = row["revoked_at_ms"]
        let used: Int64? = row["last_used_at_ms"]
        return OperatorCredential(
            id: row["id"], tenantId: row["tenant_id"], name: row["name"],
            scopes: scopes.split(separator: " ").map(String.init),
            createdAt: Timestamp.date(millis: row["created_at_ms"]),
            expiresAt: expires.map(Timestamp.date(millis:)), revokedAt: revoked.map(Timestamp.date(millis:)),
            tokenPrefix: row["token_prefix"], lastUsedAt: used.map(Timestamp.date(millis:)))
    }

    private static func tenant(_ row: Row) -> TenantRecord {
        TenantRecord(id: row["id"], name: row["name"], createdAt: Timestamp.date(millis: row["created_at_ms"]))
    }

    public func tenant(id: String) async throws(StorageError) -> TenantRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM tenants WHERE id = ?", arguments: [id]).map(Self.tenant)
        }
    }

    public func operatorCredential(tokenHash: String) async throws(StorageError) -> OperatorCredential? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM operator_credentials WHERE token_hash = ?", arguments: [tokenHash])
                .map(Self.operatorCredential)
        }
    }

    public func tenants() async throws(StorageError) -> [TenantRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM tenants ORDER BY created_at_ms, id").map(Self.tenant)
        }
    }

    public func loadTenant(_ tenantId: String) async throws(StorageError) -> TenantSnapshot? {
        try await read { db in
            guard let tenantRow = try Row.fetchOne(db, sql: "SELECT * FROM tenants WHERE id = ?", arguments: [tenantId])
            else {
                return nil
            }
            var snapshot = TenantSnapshot(tenant: Self.tenant(tenantRow))
            let args: StatementArguments = [tenantId]
            snapshot.customers = try Row.fetchAll(
                db, sql: "SELECT * FROM customers WHERE tenant_id = ?", arguments: args
            ).map {
                Customer(
                    id: $0["id"], tenantId: tenantId, name: $0["name"], externalId: $0["external_id"],
                    timeZone: $0["time_zone"], taxRate: Money(nanos: $0["tax_rate_nanos"]),
                    blockAtZeroCredit: $0["block_at_zero_credit"])
            }
            snapshot.creditGrants = try Row.fetchAll(
                db, sql: "SELECT * FROM credit_grants WHERE tenant_id = ?", arguments: args
            ).map { row throws in
                guard let kind = CreditGrant.Kind(rawValue: row["kind"]) else {
                    throw StorageError.backend("credit grant \(row["id"] as String) has an unknown kind")
                }
                let expires: Int64? = row["expires_at_ms"]
                return CreditGrant(
                    id: row["id"], tenantId: tenantId, customerId: row["customer_id"], currency: row["currency"],
                    amount: Money(nanos: row["amount_nanos"]), kind: kind, priority: row["priority"],
                    grantedAt: Timestamp.date(millis: row["granted_at_ms"]),
                    expiresAt: expires.map(Timestamp.date(millis:)), description: row["description"])
            }
            snapshot.products = try Row.fetchAll(
                db, sql: "SELECT * FROM products WHERE tenant_id = ?", arguments: args
            ).map { row throws in
                guard let kind = Product.Kind(rawValue: row["kind"]) else {
                    throw StorageError.backend("product \(row["id"] as String) has an unknown kind")
                }
                return Product(
                    id: row["id"], tenantId: tenantId, name: row["name"], kind: kind,
                    tools: try ProductCatalog.tools(row["catalog"]), closed: row["closed"],
                    createdAt: Timestamp.date(millis: row["created_at_ms"]))
            }
            snapshot.discounts = try Row.fetchAll(
                db, sql: "SELECT * FROM discounts WHERE tenant_id = ?", arguments: args
            ).map { row throws in
                let percent: Int64? = row["percent_off_nanos"]
                let amount: Int64? = row["amount_off_nanos"]
                let currency: String? = row["currency"]
                let ends: Int64? = row["ends_at_ms"]
                let off: Discount.Off
                if let percent {
                    off = .percent(Money(nanos: percent))
                } else if let amount, let currency {
                    off = .amount(Money(nanos: amount), currency: currency)
                } else {
                    throw StorageError.backend("discount \(row["id"] as String) has no percent or amount off")
                }
                return Discount(
                    id: row["id"], tenantId: tenantId, customerId: row["customer_id"], off: off,
                    startsAt: Timestamp.date(millis: row["starts_at_ms"]), endsAt: ends.map(Timestamp.date(millis:)),
                    description: row["description"], createdAt: Timestamp.date(millis: row["created_at_ms"]))
            }
            snapshot.teams = try Row.fetchAll(db, sql: "SELECT * FROM teams WHERE tenant_id = ?", arguments: args).map {
                Team(id: $0["id"], tenantId: tenantId, customerId: $0["customer_id"], name: $0["name"])
            }
            snapshot.agents = try Row.fetchAll(db, sql: "SELECT * FROM agents WHERE tenant_id = ?", arguments: args).map
            {
                Agent(
                    id: $0["id"], tenantId: tenantId, teamId: $0["team_id"], name: $0["name"],
                    agentType: $0["agent_type"], clientId: $0["client_id"])
            }
            snapshot.credentials = try Row.fetchAll(
                db, sql: "SELECT * FROM credentials WHERE tenant_id = ?", arguments: args
            )
            .map(Self.credential)
            snapshot.operatorCredentials = try Row.fetchAll(
                db, sql: "SELECT * FROM operator_credentials WHERE tenant_id = ?", arguments: args
            )
            .map(Self.operatorCredential)
            snapshot.caps = try Row.fetchAll(db, sql: "SELECT * FROM caps WHERE tenant_id = ?", arguments: args).map {
                row in
                try Self.cap(row, tenantId: tenantId)
            }
            snapshot.plans = try Row.fetchAll(
                db, sql: "SELECT * FROM plans WHERE tenant_id = ? ORDER BY name, version",
                arguments: args
            ).map {
                PlanRecord(
                    tenantId: tenantId, planId: $0["plan_id"], name: $0["name"], version: $0["version"],
                    document: $0["document"], createdAt: Timestamp.date(millis: $0["created_at_ms"]))
            }
            snapshot.subscriptions = try Row.fetchAll(
                db, sql: "SELECT * FROM subscriptions WHERE tenant_id = ?",
                arguments: args
            ).map { row throws in
                guard
                    let period = BillingCalendar.Cadence(stored: row["period_cadence"], anchor: row["period_anchor"])
                else {
                    throw StorageError.backend("subscription \(row["id"] as String) has an unknown period cadence")
                }
                return SubscriptionRecord(
                    id: row["id"], tenantId: tenantId, customerId: row["customer_id"], planId: row["plan_id"],
                    version: row["version"], startsAt: Timestamp.date(millis: row["starts_at_ms"]), period: period,
                    productId: row["product_id"])
            }
            snapshot.planSwaps = try Row.fetchAll(
                db, sql: "SELECT * FROM plan_swaps WHERE tenant_id = ?", arguments: args
            ).map {
                PlanSwapRecord(
                    id: $0["id"], tenantId: tenantId, subscriptionId: $0["subscription_id"], planId: $0["plan_id"],
                    version: $0["version"], effectiveAt: Timestamp.date(millis: $0["effective_at_ms"]))
            }
            return snapshot
        }
    }

    private static func credential(_ row: Row) -> Credential {
        let scopes: String = row["scopes"]
        let revoked: Int64? = row["revoked_at_ms"]
        let limit: Int64? = row["spend_limit_nanos"]
        let used: Int64? = row["last_used_at_ms"]
        return Credential(
            id: row["id"], tenantId: row["tenant_id"], agentId: row["agent_id"],
            scopes: scopes.split(separator: " ").map(String.init),
            expiresAt: Timestamp.date(millis: row["expires_at_ms"]),
            revokedAt: revoked.map(Timestamp.date(millis:)), spendLimit: limit.map(Money.init(nanos:)),
            tokenPrefix: row["token_prefix"], lastUsedAt: used.map(Timestamp.date(millis:)), parentId: row["parent_id"],
            label: row["label"])
    }

    private static func cap(_ row: Row, tenantId: String) throws -> Cap {
        guard let scope = CapScope(rawValue: row["scope"]), let period = CapPeriod(rawValue: row["period"]) else {
            throw StorageError.backend("cap row with unknown scope or period")
        }
        return Cap(
            id: row["id"], tenantId: tenantId, target: ScopeRef(scope, row["scope_id"]),
            limit: Money(nanos: row["limit_nanos"]), period: period, warnAtPercent: row["warn_at_percent"])
    }

    // MARK: hierarchy

    public func insertAgent(_ agent: Agent, clientSecretHash: String) async throws(StorageError) {
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO agents(tenant_id, id, team_id, name, agent_type, client_id, client_secret_hash)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    agent.tenantId, agent.id, agent.teamId, agent.name, agent.agentType, agent.clientId,
                    clientSecretHash,
                ])
        }
    }

    public func agent(clientId: String) async throws(StorageError) -> (agent: Agent, secrets: ClientSecrets)? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM agents WHERE client_id = ?", arguments: [clientId]).map { row in
                let until: Int64? = row["previous_secret_until_ms"]
                return (
                    Agent(
                        id: row["id"], tenantId: row["tenant_id"], teamId: row["team_id"], name: row["name"],
                        agentType: row["agent_type"], clientId: row["client_id"]),
                    ClientSecrets(
                        hash: row["client_secret_hash"], previousHash: row["previous_secret_hash"],
                        previousUntil: until.map(Timestamp.date(millis:)))
                )
            }
        }
    }

    public func insertCredential(_ credential: Credential, tokenHash: String) async throws(StorageError) {
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO credentials(tenant_id, id, agent_id, scopes, expires_at_ms, revoked_at_ms,
                        spend_limit_nanos, token_hash, token_prefix, parent_id, label)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    credential.tenantId, credential.id, credential.agentId,
                    credential.scopes.joined(separator: " "), Timestamp.millis(credential.expiresAt),
                    credential.revokedAt.map(Timestamp.millis), credential.spendLimit?.nanos, tokenHash,
                    credential.tokenPrefix, credential.parentId, credential.label,
                ])
        }
    }

    public func credential(tokenHash: String) async throws(StorageError) -> Credential? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM credentials WHERE token_hash = ?", arguments: [tokenHash]).map(
                Self.credential)
        }
    }

    // MARK: tenant writes

    public func write(_ change: TenantWrite, answer: IdempotencyRecord?) async throws(StorageError) -> WriteOutcome {
        try await write { [keys] db in
            let key = answer.map { LedgerKeys.Key(tenantId: $0.tenantId, key: $0.key) }
            if let key, let stored = try keys.lookUp(key, db) { return .keyTaken(stored) }
            guard try Self.apply(change, db) else { return .unchanged }
            if let answer, let key {
                let id = Identifiers.make(.answer, at: answer.createdAt)
                try db.execute(
                    sql: """
                        INSERT INTO answers(tenant_id, id, method, params, result, created_at_ms)
                        VALUES (?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        answer.tenantId, id, answer.method, answer.params, answer.result,
                        Timestamp.millis(answer.createdAt),
                    ])
                try keys.record([(key, id)], db)
            }
            return .written
        }
    }

    /// Makes `change` in the transaction of `db`; false if it had nothing to change.
    private static func apply(_ change: TenantWrite, _ db: Database) throws -> Bool {
        switch change {
        case .insertCustomer(let customer):
            try db.execute(
                sql: """
                    INSERT INTO customers(tenant_id, id, name, external_id, time_zone, tax_rate_nanos,
                        block_at_zero_credit)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    customer.tenantId, customer.id, customer.name, customer.externalId, customer.timeZone,
                    customer.taxRate.nanos, customer.blockAtZeroCredit,
                ])
        case .updateCustomer(let customer):
            try db.execute(
                sql: """
                    UPDATE customers SET name = ?, tax_rate_nanos = ?, block_at_zero_credit = ?
                    WHERE tenant_id = ? AND id = ?
                    """,
                arguments: [
                    customer.name, customer.taxRate.nanos, customer.blockAtZeroCredit, customer.tenantId, customer.id,
                ])
            return db.changesCount == 1
        case .insertProduct(let product):
            try db.execute(
                sql: """
                    INSERT INTO products(tenant_id, id, name, kind, catalog, closed, created_at_ms)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    product.tenantId, product.id, product.name, product.kind.rawValue,
                    ProductCatalog.text(product.tools), product.closed, Timestamp.millis(product.createdAt),
                ])
        case .updateProduct(let product):
            try db.execute(
                sql: "UPDATE products SET catalog = ?, closed = ? WHERE tenant_id = ? AND id = ?",
                arguments: [ProductCatalog.text(product.tools), product.closed, product.tenantId, product.id])
            return db.changesCount == 1
        case .insertDiscount(let discount):
            let (percent, amount, currency) = discount.off.stored
            try db.execute(
                sql: """
                    INSERT INTO discounts(tenant_id, id, customer_id, percent_off_nanos, amount_off_nanos, currency,
                        starts_at_ms, ends_at_ms, description, created_at_ms)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    discount.tenantId, discount.id, discount.customerId, percent, amount, currency,
                    Timestamp.millis(discount.startsAt), discount.endsAt.map(Timestamp.millis), discount.description,
                    Timestamp.millis(discount.createdAt),
                ])
        case .endDiscount(let tenantId, let id, let endsAt):
            try db.execute(
                sql: """
                    UPDATE discounts SET ends_at_ms = ?1
                    WHERE tenant_id = ?2 AND id = ?3 AND (ends_at_ms IS NULL OR ends_at_ms > ?1)
                    """, arguments: [Timestamp.millis(endsAt), tenantId, id])
            return db.changesCount == 1
        case .insertCreditGrant(let grant):
            try db.execute(
                sql: """
                    INSERT INTO credit_grants(tenant_id, id, customer_id, currency, amount_nanos, kind, priority,
                        granted_at_ms, expires_at_ms, description)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    grant.tenantId, grant.id, grant.customerId, grant.currency, grant.amount.nanos,
                    grant.kind.rawValue, grant.priority, Timestamp.millis(grant.grantedAt),
                    grant.expiresAt.map(Timestamp.millis), grant.description,
                ])
        case .insertTeam(let team):
            try db.execute(
                sql: "INSERT INTO teams(tenant_id, id, customer_id, name) VALUES (?, ?, ?, ?)",
                arguments: [team.tenantId, team.id, team.customerId, team.name])
        case .insertPlan(let plan):
            try db.execute(
                sql: """
                    INSERT INTO plans(tenant_id, plan_id, name, version, document, created_at_ms)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    plan.tenantId, plan.planId, plan.name, plan.version, plan.document,
                    Timestamp.millis(plan.createdAt),
                ])
        case .insertSubscription(let subscription):
            try db.execute(
                sql: """
                    INSERT INTO subscriptions(tenant_id, id, customer_id, plan_id, version, starts_at_ms,
                        period_cadence, period_anchor, product_id)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    subscription.tenantId, subscription.id, subscription.customerId, subscription.planId,
                    subscription.version, Timestamp.millis(subscription.startsAt), subscription.period.stored.cadence,
                    subscription.period.stored.anchor, subscription.productId,
                ])
        case .insertPlanSwap(let swap):
            try db.execute(
                sql: """
                    INSERT INTO plan_swaps(tenant_id, id, subscription_id, plan_id, version, effective_at_ms)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    swap.tenantId, swap.id, swap.subscriptionId, swap.planId, swap.version,
                    Timestamp.millis(swap.effectiveAt),
                ])
        case .upsertCap(let cap):
            try db.execute(
                sql: """
                    INSERT INTO caps(tenant_id, id, scope, scope_id, period, limit_nanos, warn_at_percent)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(tenant_id, scope, scope_id, period)
                    DO UPDATE SET id = excluded.id, limit_nanos = excluded.limit_nanos,
                        warn_at_percent = excluded.warn_at_percent
                    """,
                arguments: [
                    cap.tenantId, cap.id, cap.target.scope.rawValue, cap.target.id, cap.period.rawValue,
                    cap.limit.nanos, cap.warnAtPercent,
                ])
        case .revokeCredential(let tenantId, let credentialId, let at):
            try db.execute(
                sql: """
                    UPDATE credentials SET revoked_at_ms = ?1
                    WHERE tenant_id = ?2 AND revoked_at_ms IS NULL AND id IN (
                        WITH RECURSIVE line(id) AS (
                            SELECT ?3
                            UNION SELECT c.id FROM credentials c JOIN line ON c.tenant_id = ?2 AND c.parent_id = line.id
                        )
                        SELECT id FROM line)
                    """, arguments: [Timestamp.millis(at), tenantId, credentialId])
            return db.changesCount >= 1
        case .insertOperatorCredential(let credential, let tokenHash):
            try Self.insertOperator(credential, tokenHash: tokenHash, db)
        case .revokeOperatorCredential(let tenantId, let credentialId, let at):
            try db.execute(
                sql: """
                    UPDATE operator_credentials SET revoked_at_ms = ?1
                    WHERE tenant_id = ?2 AND id = ?3 AND (revoked_at_ms IS NULL OR revoked_at_ms > ?1)
                    """, arguments: [Timestamp.millis(at), tenantId, credentialId])
            return db.changesCount == 1
        case .noteCredentialUse(let tenantId, let credentialId, let at):
            let arguments: StatementArguments = [Timestamp.millis(at), tenantId, credentialId]
            try db.execute(
                sql: "UPDATE credentials SET last_used_at_ms = ? WHERE tenant_id = ? AND id = ?", arguments: arguments)
            var changed = db.changesCount
            try db.execute(
                sql: "UPDATE operator_credentials SET last_used_at_ms = ? WHERE tenant_id = ? AND id = ?",
                arguments: arguments)
            changed += db.changesCount
            return changed == 1
        case .rotateClientSecret(let tenantId, let agentId, let secretHash, let previousUntil):
            // The previous secret is the current one until this moment; with no overlap it is forgotten at once.
            try db.execute(
                sql: """
                    UPDATE agents SET
                        previous_secret_hash = CASE WHEN ?2 IS NULL THEN NULL ELSE client_secret_hash END,
                        previous_secret_until_ms = ?2, client_secret_hash = ?1
                    WHERE tenant_id = ?3 AND id = ?4
                    """, arguments: [secretHash, previousUntil.map(Timestamp.millis), tenantId, agentId])
            return db.changesCount == 1
        case .setSessionTimeouts(let tenantId, let idleAfterMs, let sessionTimeoutMs):
            try db.execute(
                sql: """
                    INSERT INTO settings(key, value) VALUES (?, ?)
                    ON CONFLICT(key) DO UPDATE SET value = excluded.value
                    """,
                arguments: [
                    SessionTimeoutsSetting.key(tenantId),
                    SessionTimeoutsSetting.text(idleAfterMs: idleAfterMs, sessionTimeoutMs: sessionTimeoutMs),
                ])
        case .openSession(let session):
            try db.execute(
                sql: """
                    INSERT INTO sessions(tenant_id, id, agent_id, team_id, customer_id, opened_at_ms, metadata)
                    VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(tenant_id, id) DO NOTHING
                    """,
                arguments: [
                    session.tenantId, session.id, session.agentId, session.teamId, session.customerId,
                    Timestamp.millis(session.openedAt), session.metadata,
                ])
            return db.changesCount == 1
        case .closeSession(let tenantId, let id, let closedAt, let outcome, let totals):
            try db.execute(
                sql: """
                    UPDATE sessions SET closed_at_ms = ?, outcome = ?, calls = ?, input_tokens = ?,
                        output_tokens = ?, reasoning_tokens = ?, duration_ms = ?, cost_nanos = ?,
                        provider_cost_nanos = ?, errors = ?, currency = ?,
                        last_call_at_ms = (
                            SELECT MAX(c.at_ms) FROM charges c
                            WHERE c.tenant_id = sessions.tenant_id AND c.agent_id = sessions.agent_id
                                AND c.at_ms >= sessions.opened_at_ms AND c.session_id = sessions.id)
                    WHERE tenant_id = ? AND id = ? AND closed_at_ms IS NULL
                    """,
                arguments: [
                    Timestamp.millis(closedAt), outcome.rawValue, totals.calls, totals.inputTokens,
                    totals.outputTokens, totals.reasoningTokens, totals.durationMs, totals.cost.nanos,
                    totals.providerCost.nanos, totals.errors, totals.currency, tenantId, id,
                ])
            return db.changesCount == 1
        case .finishReservation(let tenantId, let id, let state, let receiptId):
            try db.execute(
                sql: """
                    UPDATE reservations SET state = ?, receipt_id = ?
                    WHERE tenant_id = ? AND id = ? AND state = 'held'
                    """, arguments: [state.rawValue, receiptId, tenantId, id])
            return db.changesCount == 1
        case .answerOnly:
            break
        }
        return true
    }

    // MARK: ledger

    /// For callers on tasks (tests): the same commit, on a dispatch thread that may block. The ledger writer
    /// calls `commitBlocking` on its own thread.
    public func commit(_ entries: [LedgerEntry]) async throws(StorageError) -> [CommitOutcome] {
        let result = await withCheckedContinuation {
            (continuation: CheckedContinuation<Result<[CommitOutcome], StorageError>, Never>) in
            DispatchQueue.global().async {
                do throws(StorageError) {
                    continuation.resume(returning: .success(try self.commitBlocking(entries)))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try result.get()
    }

    /// The group commit on the calling thread: GRDB runs a synchronous write inline when its writer is free.
    public func commitBlocking(_ entries: [LedgerEntry]) throws(StorageError) -> [CommitOutcome] {
        let outcomes: [CommitOutcome]
        do { outcomes = try pool.write { [keys] db in try Self.writeGroup(entries, keys: keys, db) } } catch {
            throw Self.translate(error)
        }
        if checkpointer.catchUpNeeded {
            // Between two groups, so no write is in progress: this checkpoint finishes and the next
            // transaction starts the WAL over. Busy (the background checkpoint holds the lock) just means later.
            if let result = try? pool.writeWithoutTransaction({ db in try db.checkpoint(.passive) }) {
                checkpointer.caughtUp(walFrames: result.walFrameCount)
            }
        }
        checkpointer.request()
        return outcomes
    }

    /// One group's transaction: one fsync for all of it; statements are prepared once per connection.
    private static func writeGroup(_ entries: [LedgerEntry], keys: LedgerKeys, _ db: Database) throws -> [CommitOutcome]
    {
        var charge = try LedgerStatement(
            db,
            """
            INSERT INTO charges(tenant_id, receipt_id, customer_id, team_id, agent_id, credential_id, session_id,
                subscription_id, plan_id, plan_version, tool, quantity, input_tokens, output_tokens, reasoning_tokens,
                duration_ms, status, cost_nanos, provider_cost_nanos, currency, idempotency_key, at_ms, day,
                request_method, request_params, result, model, invocation_id, parent_invocation_id, retry_count,
                parallel, occurred_at_ms)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        var outcomes: [CommitOutcome] = []
        outcomes.reserveCapacity(entries.count)
        var recorded: [(LedgerKeys.Key, receipt: String)] = []
        var recordedHere: [LedgerKeys.Key: Int] = [:]
        for entry in entries {
            let i = entry.idempotency
            let key = LedgerKeys.Key(tenantId: i.tenantId, key: i.key)
            if let earlier = recordedHere[key] {
                // Taken by an earlier entry of this very group: that one's answer is the stored one.
                entry.notRecorded()
                outcomes.append(.duplicate(entries[earlier].idempotency))
                continue
            }
            if let stored = try keys.lookUp(key, db) {
                // The key was already there: answer with what it recorded, write nothing.
                entry.notRecorded()
                outcomes.append(.duplicate(stored))
                continue
            }
            if entry.isStale {
                outcomes.append(.stale)
                continue
            }
            let c = entry.charge
            charge.bind(c.tenantId)
            charge.bind(c.receiptId)
            charge.bind(c.customerId)
            charge.bind(c.teamId)
            charge.bind(c.agentId)
            charge.bind(c.credentialId)
            charge.bind(c.sessionId)
            charge.bind(c.subscriptionId)
            charge.bind(c.planId)
            charge.bind(c.planVersion)
            charge.bind(c.tool)
            charge.bind(c.quantity)
            charge.bind(c.inputTokens)
            charge.bind(c.outputTokens)
            charge.bind(c.reasoningTokens)
            charge.bind(c.durationMs)
            charge.bind(c.status)
            charge.bind(c.cost.nanos)
            charge.bind(c.providerCost.nanos)
            charge.bind(c.currency)
            charge.bind(c.idempotencyKey)
            charge.bind(Timestamp.millis(c.at))
            charge.bind(PeriodCalendar.dayIndex(c.at))
            charge.bind(i.method)
            charge.bind(i.params)
            charge.bind(i.result)
            charge.bind(c.model ?? "")
            charge.bind(c.invocationId)
            charge.bind(c.parentInvocationId ?? "")
            charge.bind(c.retryCount)
            charge.bind(c.parallel ? Int64(1) : 0)
            charge.bind(c.occurredAt.map(Timestamp.millis))
            try charge.run()
            if let settles = entry.settles {
                try db.execute(
                    sql: """
                        UPDATE reservations SET state = 'committed', receipt_id = ?
                        WHERE tenant_id = ? AND id = ? AND state = 'held'
                        """, arguments: [c.receiptId, c.tenantId, settles])
            }
            recordedHere[key] = outcomes.count
            recorded.append((key, c.receiptId))
            outcomes.append(.recorded)
        }
        try keys.record(recorded, db)
        return outcomes
    }

    public func idempotencyRecord(tenantId: String, key: String) async throws(StorageError) -> IdempotencyRecord? {
        try await read { [keys] db in try keys.lookUp(LedgerKeys.Key(tenantId: tenantId, key: key), db) }
    }

    /// Sessions with their totals: the stored final record once closed, summed from the charges while open.
    /// The page of sessions is chosen first (`filter`, newest first, `LIMIT ?2`), and only its open sessions
    /// are joined with their charges: a tenant with many open sessions pays for the page, not for all of them.
    private static func sessionQuery(filter: String) -> String {
        """
        SELECT s.*, SUM(CASE WHEN c.quantity > 0 THEN 1 ELSE 0 END) AS live_calls, SUM(c.input_tokens) AS live_input,
            SUM(c.output_tokens) AS live_output, SUM(c.reasoning_tokens) AS live_reasoning,
            SUM(c.duration_ms) AS live_duration,
            SUM(c.cost_nanos) AS live_cost, SUM(c.provider_cost_nanos) AS live_provider_cost, SUM(CASE WHEN c.status IS
            NOT NULL AND c.status <> 'SUCCESS' THEN 1 ELSE 0 END) AS live_errors, MAX(c.at_ms) AS live_last_at,
            MAX(c.currency) AS live_currency
        FROM (SELECT * FROM sessions WHERE tenant_id = ?1 \(filter) ORDER BY opened_at_ms DESC, id DESC LIMIT ?2) s
        LEFT JOIN charges c
            ON s.closed_at_ms IS NULL AND c.tenant_id = s.tenant_id AND c.agent_id = s.agent_id
                AND c.at_ms >= s.opened_at_ms AND c.session_id = s.id
        GROUP BY s.tenant_id, s.id ORDER BY s.opened_at_ms DESC, s.id DESC
        """
    }

    private static func sessionRecord(_ row: Row) -> SessionRecord {
        let closed: Int64? = row["closed_at_ms"]
        var totals = SessionTotals()
        let open = closed == nil
        totals.calls = open ? (row["live_calls"] ?? 0) : row["calls"]
        totals.inputTokens = open ? (row["live_input"] ?? 0) : row["input_tokens"]
        totals.outputTokens = open ? (row["live_output"] ?? 0) : row["output_tokens"]
        totals.reasoningTokens = open ? (row["live_reasoning"] ?? 0) : row["reasoning_tokens"]
        totals.durationMs = open ? (row["live_duration"] ?? 0) : row["duration_ms"]
        totals.cost = Money(nanos: open ? (row["live_cost"] ?? 0) : row["cost_nanos"])
        totals.providerCost = Money(nanos: open ? (row["live_provider_cost"] ?? 0) : row["provider_cost_nanos"])
        totals.errors = open ? (row["live_errors"] ?? 0) : row["errors"]
        totals.currency = open ? row["live_currency"] : row["currency"]
        let lastCall: Int64? = open ? row["live_last_at"] : row["last_call_at_ms"]
        return SessionRecord(
            tenantId: row["tenant_id"], id: row["id"], agentId: row["agent_id"], teamId: row["team_id"],
            customerId: row["customer_id"], openedAt: Timestamp.date(millis: row["opened_at_ms"]),
            closedAt: closed.map(Timestamp.date(millis:)),
            outcome: (row["outcome"] as String?).flatMap(SessionOutcome.init(rawValue:)),
            metadata: row["metadata"], lastCallAt: lastCall.map(Timestamp.date(millis:)), totals: totals)
    }

    public func session(tenantId: String, id: String) async throws(StorageError) -> SessionRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: Self.sessionQuery(filter: "AND id = ?3"), arguments: [tenantId, 1, id])
                .map(Self.sessionRecord)
        }
    }

    public func sessions(tenantId: String, _ selection: SessionSelection, limit: Int) async throws(StorageError)
        -> [SessionRecord]
    {
        let state =
            switch selection {
            case .open: "AND closed_at_ms IS NULL"
            case .closed: "AND closed_at_ms IS NOT NULL"
            case .all: ""
            }
        return try await read { db in
            try Row.fetchAll(db, sql: Self.sessionQuery(filter: state), arguments: [tenantId, limit])
                .map(Self.sessionRecord)
        }
    }

    private static func reservationRecord(_ row: Row) -> ReservationRecord {
        var record = ReservationRecord(
            tenantId: row["tenant_id"], id: row["id"], idempotencyKey: row["idempotency_key"],
            path: ChargePath(
                customerId: row["customer_id"], teamId: row["team_id"], agentId: row["agent_id"],
                sessionId: row["session_id"], credentialId: row["credential_id"]),
            tool: row["tool"], held: Money(nanos: row["held_nanos"]), currency: row["currency"],
            createdAt: Timestamp.date(millis: row["created_at_ms"]),
            expiresAt: Timestamp.date(millis: row["expires_at_ms"]),
            state: ReservationRecord.State(rawValue: row["state"]) ?? .expired, receiptId: row["receipt_id"])
        let parent: String = row["parent_invocation_id"]
        record.parentInvocationId = parent.isEmpty ? nil : parent
        record.retryCount = row["retry_count"]
        record.parallel = (row["parallel"] as Int64) != 0
        record.productId = row["product_id"]
        return record
    }

    public func insertReservation(_ reservation: ReservationRecord, idempotency: IdempotencyRecord)
        async throws(StorageError) -> IdempotencyRecord?
    {
        try await write { [keys] db in
            let r = reservation
            let key = LedgerKeys.Key(tenantId: idempotency.tenantId, key: idempotency.key)
            if let stored = try keys.lookUp(key, db) { return stored }
            try db.execute(
                sql: """
                    INSERT INTO reservations(tenant_id, id, idempotency_key, customer_id, team_id, agent_id,
                        credential_id, session_id, tool, held_nanos, currency, created_at_ms, expires_at_ms, state,
                        receipt_id, request_params, result, parent_invocation_id, retry_count, parallel, product_id)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(tenant_id, idempotency_key) DO NOTHING
                    """,
                arguments: [
                    r.tenantId, r.id, r.idempotencyKey, r.path.customerId, r.path.teamId, r.path.agentId,
                    r.path.credentialId, r.path.sessionId, r.tool, r.held.nanos, r.currency,
                    Timestamp.millis(r.createdAt), Timestamp.millis(r.expiresAt), r.state.rawValue,
                    r.receiptId, idempotency.params, idempotency.result, r.parentInvocationId ?? "", r.retryCount,
                    r.parallel ? 1 : 0, r.productId,
                ])
            guard db.changesCount == 1 else {
                // A hold made before its key went to the key index: it has no answer stored to replay.
                return IdempotencyRecord(
                    tenantId: r.tenantId, key: r.idempotencyKey, method: "meter.authorize",
                    params: "", result: "", createdAt: r.createdAt)
            }
            try keys.record([(key, r.id)], db)
            return nil
        }
    }

    public func reservation(tenantId: String, id: String) async throws(StorageError) -> ReservationRecord? {
        try await read { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM reservations WHERE tenant_id = ? AND id = ?", arguments: [tenantId, id]
            )
            .map(Self.reservationRecord)
        }
    }

    public func heldReservations(tenantId: String) async throws(StorageError) -> [ReservationRecord] {
        try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM reservations WHERE tenant_id = ? AND state = 'held' ORDER BY id",
                arguments: [tenantId]
            ).map(Self.reservationRecord)
        }
    }

    public func insertAlert(_ alert: AlertRecord) async throws(StorageError) {
        try await write { db in
            try db.execute(
                sql: "INSERT INTO alerts(tenant_id, id, kind, at_ms, body) VALUES (?, ?, ?, ?, ?)",
                arguments: [alert.tenantId, alert.id, alert.kind, Timestamp.millis(alert.at), alert.body])
        }
    }

    public func alerts(tenantId: String, kinds: [String]?, limit: Int) async throws(StorageError) -> [AlertRecord] {
        try await read { db in
            var sql = "SELECT * FROM alerts WHERE tenant_id = ?"
            var arguments: [any DatabaseValueConvertible] = [tenantId]
            if let kinds {
                sql += " AND kind IN (\(kinds.map { _ in "?" }.joined(separator: ", ")))"
                arguments += kinds.map { $0 as any DatabaseValueConvertible }
            }
            sql += " ORDER BY at_ms DESC, id DESC LIMIT ?"
            arguments.append(limit)
            return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(arguments)).map {
                AlertRecord(
                    tenantId: tenantId, id: $0["id"], kind: $0["kind"], at: Timestamp.date(millis: $0["at_ms"]),
                    body: $0["body"])
            }
        }
    }

    public func charges(tenantId: String, receiptIds: [String]) async throws(StorageError) -> [ChargeRecord] {
        guard !receiptIds.isEmpty else { return [] }
        let found = try await read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM charges WHERE tenant_id = ? AND receipt_id IN (\(receiptIds.map { _ in "?" }
                        .joined(separator: ", ")))
                    """, arguments: StatementArguments([tenantId] + receiptIds)
            ).map(Self.chargeRecord)
        }
        let byReceipt = Dictionary(found.map { ($0.receiptId, $0) }, uniquingKeysWith: { first, _ in first })
        return receiptIds.compactMap { byReceipt[$0] }
    }

    public func insertInvoice(_ invoice: InvoiceRecord, lineReceipts: [InvoiceLineReceipt])
        async throws(StorageError) -> InvoiceRecord
    {
        try await write { db in
            if let existing = try Row.fetchOne(
                db, sql: "SELECT * FROM invoices WHERE tenant_id = ? AND subscription_id = ? AND period_start_ms = ?",
                arguments: [invoice.tenantId, invoice.subscriptionId, Timestamp.millis(invoice.periodStart)])
            {
                return Self.invoice(existing)
            }
            try db.execute(
                sql: """
                    INSERT INTO invoices(tenant_id, id, customer_id, subscription_id, period_start_ms, period_end_ms,
                        status, document, created_at_ms)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    invoice.tenantId, invoice.id, invoice.customerId, invoice.subscriptionId,
                    Timestamp.millis(invoice.periodStart), Timestamp.millis(invoice.periodEnd), invoice.status,
                    invoice.document, Timestamp.millis(invoice.createdAt),
                ])
            var insert = try LedgerStatement(
                db, "INSERT INTO invoice_line_receipts(tenant_id, invoice_id, line, receipt_id) VALUES (?, ?, ?, ?)")
            for receipt in lineReceipts {
                insert.bind(invoice.tenantId)
                insert.bind(invoice.id)
                insert.bind(receipt.line)
                insert.bind(receipt.receiptId)
                try insert.run()
            }
            if let kind = invoice.stripeOutbox { try Self.enqueue(kind, of: invoice, db) }
            for draw in invoice.creditApplications {
                try db.execute(
                    sql: """
                        INSERT INTO credit_applications(tenant_id, invoice_id, grant_id, amount_nanos)
                        VALUES (?, ?, ?, ?)
                        """, arguments: [invoice.tenantId, invoice.id, draw.grantId, draw.amount.nanos])
            }
            return invoice
        }
    }

    private static func enqueue(_ kind: OutboxRecord.Kind, of invoice: InvoiceRecord, _ db: Database) throws {
        let at = Timestamp.millis(invoice.createdAt)
        try db.execute(
            sql: """
                INSERT INTO stripe_outbox(tenant_id, invoice_id, kind, state, progress, attempts, next_attempt_at_ms,
                    created_at_ms, updated_at_ms)
                VALUES (?, ?, ?, 'pending', '{}', 0, ?, ?, ?)
                ON CONFLICT DO NOTHING
                """, arguments: [invoice.tenantId, invoice.id, kind.rawValue, at, at, at])
    }

    public func outbox(tenantId: String, invoiceId: String) async throws(StorageError) -> [OutboxRecord] {
        try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM stripe_outbox WHERE tenant_id = ? AND invoice_id = ? ORDER BY kind DESC",
                arguments: [tenantId, invoiceId]
            ).map(Self.outboxRecord)
        }
    }

    public func dueOutbox(at date: Date, limit: Int) async throws(StorageError) -> [OutboxRecord] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM stripe_outbox WHERE state = 'pending' AND next_attempt_at_ms <= ?
                    ORDER BY next_attempt_at_ms, created_at_ms, invoice_id LIMIT ?
                    """, arguments: [Timestamp.millis(date), limit]
            ).map(Self.outboxRecord)
        }
    }

    public func updateOutbox(_ record: OutboxRecord) async throws(StorageError) {
        try await write { db in
            try db.execute(
                sql: """
                    UPDATE stripe_outbox SET state = ?, progress = ?, attempts = ?, next_attempt_at_ms = ?,
                        last_error = ?, updated_at_ms = ?
                    WHERE tenant_id = ? AND invoice_id = ? AND kind = ?
                    """,
                arguments: [
                    record.state.rawValue, record.progress, record.attempts, Timestamp.millis(record.nextAttemptAt),
                    record.lastError, Timestamp.millis(record.updatedAt), record.tenantId, record.invoiceId,
                    record.kind.rawValue,
                ])
        }
    }

    private static func outboxRecord(_ row: Row) throws -> OutboxRecord {
        guard let kind = OutboxRecord.Kind(rawValue: row["kind"]),
            let state = OutboxRecord.State(rawValue: row["state"])
        else { throw StorageError.backend("an outbox row with an unknown kind or state") }
        return OutboxRecord(
            tenantId: row["tenant_id"], invoiceId: row["invoice_id"], kind: kind, state: state,
            progress: row["progress"], attempts: row["attempts"],
            nextAttemptAt: Timestamp.date(millis: row["next_attempt_at_ms"]), lastError: row["last_error"],
            createdAt: Timestamp.date(millis: row["created_at_ms"]),
            updatedAt: Timestamp.date(millis: row["updated_at_ms"]))
    }

    public func stripeCustomer(tenantId: String, customerId: String) async throws(StorageError) -> String? {
        try await read { db in
            try String.fetchOne(
                db, sql: "SELECT stripe_customer_id FROM stripe_customers WHERE tenant_id = ? AND customer_id = ?",
                arguments: [tenantId, customerId])
        }
    }

    public func putStripeCustomer(tenantId: String, customerId: String, stripeCustomerId: String)
        async throws(StorageError)
    {
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO stripe_customers(tenant_id, customer_id, stripe_customer_id) VALUES (?, ?, ?)
                    ON CONFLICT DO NOTHING
                    """, arguments: [tenantId, customerId, stripeCustomerId])
        }
    }

    public func creditApplied(tenantId: String, customerId: String?) async throws(StorageError) -> [String: Money] {
        try await read { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT a.grant_id, SUM(a.amount_nanos) AS applied FROM credit_applications a
                    JOIN invoices i ON i.tenant_id = a.tenant_id AND i.id = a.invoice_id
                    WHERE a.tenant_id = ?1 AND i.status <> 'void' AND (?2 IS NULL OR i.customer_id = ?2)
                    GROUP BY a.grant_id
                    """, arguments: [tenantId, customerId])
            return Dictionary(
                uniqueKeysWithValues: rows.map { ($0["grant_id"] as String, Money(nanos: $0["applied"])) })
        }
    }

    public func updateInvoice(_ invoice: InvoiceRecord, expecting expected: String) async throws(StorageError) -> Bool {
        try await write { db in
            try db.execute(
                sql: "UPDATE invoices SET status = ?, document = ? WHERE tenant_id = ? AND id = ? AND status = ?",
                arguments: [invoice.status, invoice.document, invoice.tenantId, invoice.id, expected])
            guard db.changesCount == 1 else { return false }
            if let kind = invoice.stripeOutbox { try Self.enqueue(kind, of: invoice, db) }
            return true
        }
    }

    public func invoice(tenantId: String, id: String) async throws(StorageError) -> InvoiceRecord? {
        try await read { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM invoices WHERE tenant_id = ? AND id = ?", arguments: [tenantId, id]
            )
            .map(Self.invoice)
        }
    }

    public func invoices(tenantId: String, customerId: String?, subscriptionId: String?, limit: Int)
        async throws(StorageError) -> [InvoiceRecord]
    {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM invoices WHERE tenant_id = ?1 AND (?2 IS NULL OR customer_id = ?2)
                        AND (?3 IS NULL OR subscription_id = ?3)
                    ORDER BY period_start_ms DESC, id DESC LIMIT ?4
                    """, arguments: [tenantId, customerId, subscriptionId, limit]
            ).map(Self.invoice)
        }
    }

    public func invoiceLineReceipts(tenantId: String, invoiceId: String, line: Int, after: String?, limit: Int)
        async throws(StorageError) -> [String]
    {
        try await read { db in
            try String.fetchAll(
                db,
                sql: """
                    SELECT receipt_id FROM invoice_line_receipts
                    WHERE tenant_id = ? AND invoice_id = ? AND line = ? AND receipt_id > ?
                    ORDER BY receipt_id LIMIT ?
                    """, arguments: [tenantId, invoiceId, line, after ?? "", limit])
        }
    }

    private static func invoice(_ row: Row) -> InvoiceRecord {
        InvoiceRecord(
            tenantId: row["tenant_id"], id: row["id"], customerId: row["customer_id"],
            subscriptionId: row["subscription_id"], periodStart: Timestamp.date(millis: row["period_start_ms"]),
            periodEnd: Timestamp.date(millis: row["period_end_ms"]), status: row["status"],
            document: row["document"], createdAt: Timestamp.date(millis: row["created_at_ms"]))
    }

    public func charge(tenantId: String, receiptId: String) async throws(StorageError) -> ChargeRecord? {
        try await read { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM charges WHERE tenant_id = ? AND receipt_id = ?",
                arguments: [tenantId, receiptId]
            ).map(Self.chargeRecord)
        }
    }

    public func charges(tenantId: String, customerId: String, from: Date, to: Date) async throws(StorageError)
        -> [ChargeRecord]
    {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM charges WHERE tenant_id = ? AND customer_id = ? AND at_ms >= ? AND at_ms < ?
                    ORDER BY at_ms, rowid
                    """, arguments: [tenantId, customerId, Timestamp.millis(from), Timestamp.millis(to)]
            ).map(Self.chargeRecord)
        }
    }

    /// A charge from its whole row (`SELECT *`), read by `ChargeRecord(storedColumns:)`.
    private static func chargeRecord(_ row: Row) throws -> ChargeRecord {
        var columns: [String: JSONValue] = [:]
        for (name, value) in row {
            switch value.storage {
            case .int64(let number): columns[name] = .integer(number)
            case .string(let text): columns[name] = .string(text)
            default: break
            }
        }
        guard let charge = ChargeRecord(storedColumns: columns) else {
            throw DatabaseError(resultCode: .SQLITE_MISMATCH, message: "a charge row cannot be read")
        }
        return charge
    }

    public func charges(tenantId: String, subscriptionId: String, from: Date) async throws(StorageError) -> [RatingRow]
    {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT \(RatingRow.columns) FROM charges
                    WHERE tenant_id = ?1 AND subscription_id = ?2 AND at_ms >= ?3
                        AND customer_id = (SELECT customer_id FROM subscriptions WHERE tenant_id = ?1 AND id = ?2)
                    ORDER BY at_ms, rowid
                    """, arguments: [tenantId, subscriptionId, Timestamp.millis(from)]
            ).map { row in
                RatingRow(
                    planId: row[0], planVersion: row[1], tool: row[2], quantity: row[3], inputTokens: row[4],
                    outputTokens: row[5], reasoningTokens: row[6], durationMs: row[7], status: row[8],
                    providerCost: Money(nanos: row[9]), agentId: row[10], sessionId: row[11],
                    cost: Money(nanos: row[12]), at: Timestamp.date(millis: row[13]))
            }
        }
    }

    public func spend(tenantId: String, windows: SpendWindows) async throws(StorageError) -> [SpendRow] {
        // Each customer's window starts, as one JSON argument: [[customerId, monthStartMs, dayStartMs], …].
        let starts = JSONCodec.string(
            .array(
                windows.byCustomer.map { customerId, windows in
                    .array([
                        .string(customerId), .integer(Timestamp.millis(windows.month.start)),
                        .integer(Timestamp.millis(windows.day.start)),
                    ])
                }))
        let fallbackMonth = Timestamp.millis(windows.fallback.month.start)
        let fallbackDay = Timestamp.millis(windows.fallback.day.start)
        return try await read { db in
            var rows: [SpendRow] = []
            for (scope, column) in SpendColumns.all {
                let sql = """
                    WITH w(customer_id, month_start, day_start) AS (
                        SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]')
                        FROM json_each(?1))
                    SELECT c.\(column) AS id, c.customer_id AS customer, SUM(c.cost_nanos) AS lifetime,
                        SUM(CASE WHEN c.at_ms >= COALESCE(w.month_start, ?2) THEN c.cost_nanos ELSE 0 END) AS month,
                        SUM(CASE WHEN c.at_ms >= COALESCE(w.day_start, ?3) THEN c.cost_nanos ELSE 0 END) AS day
                    FROM charges c LEFT JOIN w ON w.customer_id = c.customer_id
                    WHERE c.tenant_id = ?4 GROUP BY c.\(column), c.customer_id
                    """
                let arguments: StatementArguments = [starts, fallbackMonth, fallbackDay, tenantId]
                for row in try Row.fetchAll(db, sql: sql, arguments: arguments) {
                    rows.append(
                        SpendRow(
                            target: ScopeRef(scope, row["id"]), customerId: row["customer"],
                            lifetime: Money(nanos: row["lifetime"]), month: Money(nanos: row["month"]),
                            day: Money(nanos: row["day"])))
                }
            }
            return rows
        }
    }

    public func usage(tenantId: String, filter: UsageFilter, groupBy: [UsageGroup]) async throws(StorageError)
        -> [UsageRow]
    {
        let query = UsageSQL(tenantId: tenantId, filter: filter, groupBy: groupBy, placeholder: { _ in "?" })
        return try await read { db in
            let arguments = StatementArguments(
                query.arguments.map { value -> (any DatabaseValueConvertible)? in
                    switch value {
                    case .text(let text): text
                    case .integer(let number): number
                    }
                })
            return try Row.fetchAll(db, sql: query.sql, arguments: arguments).map { row in
                query.row(
                    keys: (0..<groupBy.count).map { index -> String in
                        if groupBy[index] == .day { return UsageQuery.dayString(row["k\(index)"]) }
                        return row["k\(index)"]
                    },
                    currency: row["currency"], calls: row["calls"], quantity: row["quantity"],
                    inputTokens: row["input_tokens"], outputTokens: row["output_tokens"],
                    cost: row["cost"], providerCost: row["provider_cost"], retries: row["retries"])
            }
        }
    }
}
