// swift-format-ignore-file
// (Migrations are never edited once shipped, not even their layout.)
import GRDB

/// The SQLite schema, as named migrations. A migration that has shipped is never edited: a change is a new
/// migration appended below. Constraints live in the schema so that SQLite enforces them even if code errs.
enum SQLiteMigrations {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-walking-skeleton") { db in
            try db.execute(sql: """
                CREATE TABLE settings (
                    key TEXT PRIMARY KEY NOT NULL,
                    value TEXT NOT NULL
                );
                CREATE TABLE tenants (
                    id TEXT PRIMARY KEY NOT NULL,
                    name TEXT NOT NULL,
                    operator_token_hash TEXT NOT NULL UNIQUE,
                    created_at_ms INTEGER NOT NULL
                );
                CREATE TABLE customers (
                    tenant_id TEXT NOT NULL REFERENCES tenants(id),
                    id TEXT NOT NULL,
                    name TEXT NOT NULL,
                    external_id TEXT,
                    PRIMARY KEY (tenant_id, id)
                );
                CREATE TABLE teams (
                    tenant_id TEXT NOT NULL,
                    id TEXT NOT NULL,
                    customer_id TEXT NOT NULL,
                    name TEXT NOT NULL,
                    PRIMARY KEY (tenant_id, id),
                    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers(tenant_id, id)
                );
                CREATE TABLE agents (
                    tenant_id TEXT NOT NULL,
                    id TEXT NOT NULL,
                    team_id TEXT NOT NULL,
                    name TEXT NOT NULL,
                    agent_type TEXT,
                    client_id TEXT NOT NULL UNIQUE,
                    client_secret_hash TEXT NOT NULL,
                    PRIMARY KEY (tenant_id, id),
                    FOREIGN KEY (tenant_id, team_id) REFERENCES teams(tenant_id, id)
                );
                CREATE TABLE credentials (
                    tenant_id TEXT NOT NULL,
                    id TEXT NOT NULL,
                    agent_id TEXT NOT NULL,
                    scopes TEXT NOT NULL,
                    expires_at_ms INTEGER NOT NULL,
                    revoked_at_ms INTEGER,
                    spend_limit_nanos INTEGER CHECK (spend_limit_nanos IS NULL OR spend_limit_nanos >= 0),
                    token_hash TEXT NOT NULL UNIQUE,
                    PRIMARY KEY (tenant_id, id),
                    FOREIGN KEY (tenant_id, agent_id) REFERENCES agents(tenant_id, id)
                );
                CREATE TABLE plans (
                    tenant_id TEXT NOT NULL REFERENCES tenants(id),
                    plan_id TEXT NOT NULL,
                    name TEXT NOT NULL,
                    version INTEGER NOT NULL CHECK (version >= 1),
                    document TEXT NOT NULL,
                    created_at_ms INTEGER NOT NULL,
                    PRIMARY KEY (tenant_id, name, version),
                    UNIQUE (tenant_id, plan_id, version)
                );
                CREATE TABLE subscriptions (
                    tenant_id TEXT NOT NULL,
                    id TEXT NOT NULL,
                    customer_id TEXT NOT NULL,
                    plan_id TEXT NOT NULL,
                    version INTEGER NOT NULL,
                    starts_at_ms INTEGER NOT NULL,
                    PRIMARY KEY (tenant_id, id),
                    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers(tenant_id, id),
                    FOREIGN KEY (tenant_id, plan_id, version) REFERENCES plans(tenant_id, plan_id, version)
                );
                CREATE TABLE caps (
                    tenant_id TEXT NOT NULL REFERENCES tenants(id),
                    id TEXT NOT NULL,
                    scope TEXT NOT NULL,
                    scope_id TEXT NOT NULL,
                    period TEXT NOT NULL,
                    limit_nanos INTEGER NOT NULL CHECK (limit_nanos >= 0),
                    warn_at_percent INTEGER CHECK (warn_at_percent BETWEEN 1 AND 100),
                    PRIMARY KEY (tenant_id, id),
                    UNIQUE (tenant_id, scope, scope_id, period)
                );
                CREATE TABLE charges (
                    tenant_id TEXT NOT NULL,
                    receipt_id TEXT NOT NULL,
                    customer_id TEXT NOT NULL,
                    team_id TEXT NOT NULL,
                    agent_id TEXT NOT NULL,
                    credential_id TEXT NOT NULL,
                    session_id TEXT NOT NULL,
                    subscription_id TEXT NOT NULL,
                    plan_id TEXT NOT NULL,
                    plan_version INTEGER NOT NULL,
                    tool TEXT NOT NULL,
                    quantity INTEGER NOT NULL CHECK (quantity >= 0),
                    input_tokens INTEGER NOT NULL CHECK (input_tokens >= 0),
                    output_tokens INTEGER NOT NULL CHECK (output_tokens >= 0),
                    reasoning_tokens INTEGER NOT NULL CHECK (reasoning_tokens >= 0),
                    duration_ms INTEGER NOT NULL CHECK (duration_ms >= 0),
                    status TEXT,
                    cost_nanos INTEGER NOT NULL,
                    provider_cost_nanos INTEGER NOT NULL,
                    currency TEXT NOT NULL,
                    idempotency_key TEXT NOT NULL,
                    at_ms INTEGER NOT NULL,
                    day INTEGER NOT NULL,
                    PRIMARY KEY (tenant_id, receipt_id)
                );
                -- Each charge's idempotency key is unique through its row in `idempotency`, written in the same
                -- transaction; a second unique index here would only double the work of every insert.
                CREATE INDEX charges_by_agent ON charges(tenant_id, agent_id, at_ms);
                CREATE INDEX charges_by_customer ON charges(tenant_id, customer_id, at_ms);
                CREATE TABLE idempotency (
                    tenant_id TEXT NOT NULL,
                    key TEXT NOT NULL,
                    method TEXT NOT NULL,
                    params TEXT NOT NULL,
                    result TEXT NOT NULL,
                    created_at_ms INTEGER NOT NULL,
                    PRIMARY KEY (tenant_id, key)
                ) WITHOUT ROWID;
                """)
        }
        // No index on charges by subscription or by session: every index is written by every charge, and the
        // queries that need them (rebuilding pricing state, an open session's totals) go through the
        // customer and agent indexes instead (a subscription has one customer, a session one agent and a start).
        migrator.registerMigration("v2-plan-swaps") { db in
            try db.execute(sql: """
                CREATE TABLE plan_swaps (
                    tenant_id TEXT NOT NULL,
                    id TEXT NOT NULL,
                    subscription_id TEXT NOT NULL,
                    plan_id TEXT NOT NULL,
                    version INTEGER NOT NULL,
                    effective_at_ms INTEGER NOT NULL,
                    PRIMARY KEY (tenant_id, id),
                    FOREIGN KEY (tenant_id, subscription_id) REFERENCES subscriptions(tenant_id, id),
                    FOREIGN KEY (tenant_id, plan_id, version) REFERENCES plans(tenant_id, plan_id, version)
                );
                """)
        }
        migrator.registerMigration("v3-sessions-alerts") { db in
            try db.execute(sql: """
                CREATE TABLE sessions (
                    tenant_id TEXT NOT NULL,
                    id TEXT NOT NULL,
                    agent_id TEXT NOT NULL,
                    team_id TEXT NOT NULL,
                    customer_id TEXT NOT NULL,
                    opened_at_ms INTEGER NOT NULL,
                    closed_at_ms INTEGER,
                    outcome TEXT,
                    metadata TEXT,
                    -- The final billing record, written when the session closes.
                    calls INTEGER NOT NULL DEFAULT 0,
                    input_tokens INTEGER NOT NULL DEFAULT 0,
                    output_tokens INTEGER NOT NULL DEFAULT 0,
                    reasoning_tokens INTEGER NOT NULL DEFAULT 0,
                    duration_ms INTEGER NOT NULL DEFAULT 0,
                    cost_nanos INTEGER NOT NULL DEFAULT 0,
                    provider_cost_nanos INTEGER NOT NULL DEFAULT 0,
                    errors INTEGER NOT NULL DEFAULT 0,
                    last_call_at_ms INTEGER,
                    PRIMARY KEY (tenant_id, id),
                    FOREIGN KEY (tenant_id, agent_id) REFERENCES agents(tenant_id, id)
                );
                CREATE INDEX sessions_open ON sessions(tenant_id, closed_at_ms, opened_at_ms);
                CREATE TABLE alerts (
                    tenant_id TEXT NOT NULL,
                    id TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    at_ms INTEGER NOT NULL,
                    body TEXT NOT NULL,
                    PRIMARY KEY (tenant_id, id)
                );
                CREATE INDEX alerts_by_time ON alerts(tenant_id, at_ms);
                """)
        }
        migrator.registerMigration("v4-reservations") { db in
            try db.execute(sql: """
                CREATE TABLE reservations (
                    tenant_id TEXT NOT NULL,
                    id TEXT NOT NULL,
                    idempotency_key TEXT NOT NULL,
                    customer_id TEXT NOT NULL,
                    team_id TEXT NOT NULL,
                    agent_id TEXT NOT NULL,
                    credential_id TEXT NOT NULL,
                    session_id TEXT NOT NULL,
                    tool TEXT NOT NULL,
                    held_nanos INTEGER NOT NULL CHECK (held_nanos >= 0),
                    currency TEXT NOT NULL,
                    created_at_ms INTEGER NOT NULL,
                    expires_at_ms INTEGER NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('held', 'committed', 'released', 'expired')),
                    receipt_id TEXT,
                    PRIMARY KEY (tenant_id, id),
                    UNIQUE (tenant_id, idempotency_key)
                );
                CREATE INDEX reservations_held ON reservations(tenant_id, state);
                """)
        }
        // Idempotency keys leave their fat, randomly written table: a charge row carries its request's
        // fingerprint and answer, and its key goes to `idempotency_pending`, then in sorted chunks to the slim
        // `idempotency_index` (see `LedgerKeys`). Existing keys are all indexed here.
        migrator.registerMigration("v5-ledger-keys") { db in
            try db.execute(sql: """
                ALTER TABLE charges ADD COLUMN request_method TEXT NOT NULL DEFAULT '';
                ALTER TABLE charges ADD COLUMN request_params TEXT NOT NULL DEFAULT '';
                ALTER TABLE charges ADD COLUMN result TEXT NOT NULL DEFAULT '';
                UPDATE charges SET (request_method, request_params, result) = (
                    SELECT method, params, result FROM idempotency i
                    WHERE i.tenant_id = charges.tenant_id AND i.key = charges.idempotency_key);
                CREATE TABLE idempotency_index (
                    tenant_id TEXT NOT NULL,
                    key TEXT NOT NULL,
                    receipt_id TEXT NOT NULL,
                    PRIMARY KEY (tenant_id, key)
                ) WITHOUT ROWID;
                INSERT INTO idempotency_index(tenant_id, key, receipt_id)
                    SELECT tenant_id, idempotency_key, receipt_id FROM charges ORDER BY tenant_id, idempotency_key;
                CREATE TABLE idempotency_pending (
                    seq INTEGER PRIMARY KEY,
                    tenant_id TEXT NOT NULL,
                    key TEXT NOT NULL,
                    receipt_id TEXT NOT NULL
                );
                DROP TABLE idempotency;
                """)
        }
        // Issue 10's repairs. A session's currency is kept with its final record. A hold's key joins the
        // ledger's key index (keys are one namespace per tenant), its request and answer on its row. And an open
        // session's opening moves back to its first charge: calls racing to open a session could be stamped a
        // millisecond before it, and its totals (summed from the opening on) left them out.
        migrator.registerMigration("v6-one-key-namespace") { db in
            try db.execute(sql: """
                ALTER TABLE sessions ADD COLUMN currency TEXT;
                UPDATE sessions SET currency = (
                    SELECT MAX(c.currency) FROM charges c WHERE c.tenant_id = sessions.tenant_id
                        AND c.agent_id = sessions.agent_id AND c.session_id = sessions.id)
                WHERE closed_at_ms IS NOT NULL;
                ALTER TABLE reservations ADD COLUMN request_params TEXT;
                ALTER TABLE reservations ADD COLUMN result TEXT;
                UPDATE sessions SET opened_at_ms = (
                    SELECT MIN(sessions.opened_at_ms, COALESCE(MIN(c.at_ms), sessions.opened_at_ms)) FROM charges c
                    WHERE c.tenant_id = sessions.tenant_id AND c.agent_id = sessions.agent_id
                        AND c.session_id = sessions.id)
                WHERE closed_at_ms IS NULL;
                """)
        }
        // Issue 11: every writing method takes an idempotency key. The answers of those that write neither a
        // charge nor a hold are kept here, their keys in the ledger's key index like the others.
        migrator.registerMigration("v7-answers") { db in
            try db.execute(sql: """
                CREATE TABLE answers (
                    tenant_id TEXT NOT NULL,
                    id TEXT NOT NULL,
                    method TEXT NOT NULL,
                    params TEXT NOT NULL,
                    result TEXT NOT NULL,
                    created_at_ms INTEGER NOT NULL,
                    PRIMARY KEY (tenant_id, id)
                )
                """)
        }
        // Issue 12: the model a call reported (`usage.model`), so that usage and provider cost read per model.
        // '' for none: a key `usage.summary` groups by, the same in every backend.
        migrator.registerMigration("v8-charge-model") { db in
            try db.execute(sql: "ALTER TABLE charges ADD COLUMN model TEXT NOT NULL DEFAULT ''")
        }
        // Issue 13: each charge's place in an agent's task. Only charges with a parent are indexed by invocation:
        // a task's root is found by walking up through them, and most calls have no parent to pay for.
        migrator.registerMigration("v9-invocation-graph") { db in
            try db.execute(sql: "ALTER TABLE charges ADD COLUMN invocation_id TEXT NOT NULL DEFAULT ''")
            try db.execute(sql: "ALTER TABLE charges ADD COLUMN parent_invocation_id TEXT NOT NULL DEFAULT ''")
            try db.execute(sql: "ALTER TABLE charges ADD COLUMN retry_count INTEGER NOT NULL DEFAULT 0")
            try db.execute(sql: "ALTER TABLE charges ADD COLUMN parallel INTEGER NOT NULL DEFAULT 0")
            try db.execute(sql: "UPDATE charges SET invocation_id = idempotency_key")
            try db.execute(
                sql: """
                    CREATE INDEX charges_invocation_children ON charges(tenant_id, invocation_id)
                    WHERE parent_invocation_id <> ''
                    """)
        }
        // Issue 13: a held call's place in its task, for the charge its commit records.
        migrator.registerMigration("v10-hold-invocation-graph") { db in
            try db.execute(sql: "ALTER TABLE reservations ADD COLUMN parent_invocation_id TEXT NOT NULL DEFAULT ''")
            try db.execute(sql: "ALTER TABLE reservations ADD COLUMN retry_count INTEGER NOT NULL DEFAULT 0")
            try db.execute(sql: "ALTER TABLE reservations ADD COLUMN parallel INTEGER NOT NULL DEFAULT 0")
        }
        // Issue 14: billing periods are a subscription's own — a cadence and its anchor — in its customer's time
        // zone. What every subscription had before: calendar months in UTC.
        migrator.registerMigration("v11-billing-periods") { db in
            try db.execute(sql: "ALTER TABLE customers ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC'")
            try db.execute(sql: "ALTER TABLE subscriptions ADD COLUMN period_cadence TEXT NOT NULL DEFAULT 'month'")
            try db.execute(sql: "ALTER TABLE subscriptions ADD COLUMN period_anchor INTEGER NOT NULL DEFAULT 1")
        }
        // Issue 14: invoices. A closed period's invoice keeps its lines and totals as one document, and the receipts
        // of each line's events (what `invoices.trace` pages through); one invoice per subscription and period. A
        // charge keeps when its event occurred if that was earlier (a late event: an adjustment line), and a
        // customer its tax rate.
        migrator.registerMigration("v12-invoices") { db in
            try db.execute(
                sql: """
                    ALTER TABLE charges ADD COLUMN occurred_at_ms INTEGER;
                    ALTER TABLE customers ADD COLUMN tax_rate_nanos INTEGER NOT NULL DEFAULT 0;
                    CREATE TABLE invoices (
                        tenant_id TEXT NOT NULL,
                        id TEXT NOT NULL,
                        customer_id TEXT NOT NULL,
                        subscription_id TEXT NOT NULL,
                        period_start_ms INTEGER NOT NULL,
                        period_end_ms INTEGER NOT NULL,
                        status TEXT NOT NULL,
                        document TEXT NOT NULL,
                        created_at_ms INTEGER NOT NULL,
                        PRIMARY KEY (tenant_id, id),
                        UNIQUE (tenant_id, subscription_id, period_start_ms)
                    );
                    CREATE INDEX invoices_by_customer ON invoices(tenant_id, customer_id, period_start_ms);
                    CREATE TABLE invoice_line_receipts (
                        tenant_id TEXT NOT NULL,
                        invoice_id TEXT NOT NULL,
                        line INTEGER NOT NULL,
                        receipt_id TEXT NOT NULL,
                        PRIMARY KEY (tenant_id, invoice_id, line, receipt_id)
                    ) WITHOUT ROWID;
                    """)
        }
        // Issue 14: credit. Grants per customer; what each grant paid on an invoice, written with the invoice (its
        // credit lines) and counted while the invoice is not void; a customer that is refused at zero credit.
        migrator.registerMigration("v13-credits") { db in
            try db.execute(
                sql: """
                    ALTER TABLE customers ADD COLUMN block_at_zero_credit INTEGER NOT NULL DEFAULT 0;
                    CREATE TABLE credit_grants (
                        tenant_id TEXT NOT NULL,
                        id TEXT NOT NULL,
                        customer_id TEXT NOT NULL,
                        currency TEXT NOT NULL,
                        amount_nanos INTEGER NOT NULL,
                        kind TEXT NOT NULL,
                        priority INTEGER NOT NULL,
                        granted_at_ms INTEGER NOT NULL,
                        expires_at_ms INTEGER,
                        description TEXT NOT NULL,
                        PRIMARY KEY (tenant_id, id),
                        FOREIGN KEY (tenant_id, customer_id) REFERENCES customers(tenant_id, id)
                    );
                    CREATE TABLE credit_applications (
                        tenant_id TEXT NOT NULL,
                        invoice_id TEXT NOT NULL,
                        grant_id TEXT NOT NULL,
                        amount_nanos INTEGER NOT NULL,
                        PRIMARY KEY (tenant_id, invoice_id, grant_id)
                    ) WITHOUT ROWID;
                    """)
        }
        // Issue 14: discounts, a percentage or a fixed amount off a customer's invoices while in force.
        migrator.registerMigration("v14-discounts") { db in
            try db.execute(
                sql: """
                    CREATE TABLE discounts (
                        tenant_id TEXT NOT NULL,
                        id TEXT NOT NULL,
                        customer_id TEXT NOT NULL,
                        percent_off_nanos INTEGER,
                        amount_off_nanos INTEGER,
                        currency TEXT,
                        starts_at_ms INTEGER NOT NULL,
                        ends_at_ms INTEGER,
                        description TEXT NOT NULL,
                        created_at_ms INTEGER NOT NULL,
                        PRIMARY KEY (tenant_id, id),
                        FOREIGN KEY (tenant_id, customer_id) REFERENCES customers(tenant_id, id),
                        CHECK ((percent_off_nanos IS NULL) <> (amount_off_nanos IS NULL))
                    );
                    """)
        }
        // Issue 14: the Stripe outbox — each invoice's hand-off (send, void) and how far it came — written with the
        // invoice or its void, and the Stripe customer each customer is billed to.
        migrator.registerMigration("v15-stripe-outbox") { db in
            try db.execute(
                sql: """
                    CREATE TABLE stripe_outbox (
                        tenant_id TEXT NOT NULL,
                        invoice_id TEXT NOT NULL,
                        kind TEXT NOT NULL,
                        state TEXT NOT NULL,
                        progress TEXT NOT NULL,
                        attempts INTEGER NOT NULL,
                        next_attempt_at_ms INTEGER NOT NULL,
                        last_error TEXT,
                        created_at_ms INTEGER NOT NULL,
                        updated_at_ms INTEGER NOT NULL,
                        PRIMARY KEY (tenant_id, invoice_id, kind)
                    );
                    CREATE INDEX stripe_outbox_due ON stripe_outbox(next_attempt_at_ms) WHERE state = 'pending';
                    CREATE TABLE stripe_customers (
                        tenant_id TEXT NOT NULL,
                        customer_id TEXT NOT NULL,
                        stripe_customer_id TEXT NOT NULL,
                        PRIMARY KEY (tenant_id, customer_id)
                    );
                    """)
        }
        // Issue 14: products — what a tenant sells, with its tool catalog — and a subscription to one product.
        migrator.registerMigration("v16-products") { db in
            try db.execute(
                sql: """
                    CREATE TABLE products (
                        tenant_id TEXT NOT NULL,
                        id TEXT NOT NULL,
                        name TEXT NOT NULL,
                        kind TEXT NOT NULL,
                        catalog TEXT NOT NULL,
                        closed INTEGER NOT NULL,
                        created_at_ms INTEGER NOT NULL,
                        PRIMARY KEY (tenant_id, id),
                        UNIQUE (tenant_id, name)
                    );
                    ALTER TABLE subscriptions ADD COLUMN product_id TEXT;
                    ALTER TABLE reservations ADD COLUMN product_id TEXT;
                    """)
        }
        // Issue 15: a tenant has any number of operator credentials; the token of each tenant so far becomes its
        // first, named "initial", with every operator scope (tenants.operator_token_hash stays as the first's hash,
        // unread). Credentials keep their token's first characters and last use; a client secret can rotate.
        migrator.registerMigration("v17-credentials") { db in
            try db.execute(
                sql: """
                    CREATE TABLE operator_credentials (
                        tenant_id TEXT NOT NULL REFERENCES tenants(id),
                        id TEXT NOT NULL,
                        name TEXT NOT NULL,
                        scopes TEXT NOT NULL,
                        token_hash TEXT NOT NULL UNIQUE,
                        token_prefix TEXT,
                        created_at_ms INTEGER NOT NULL,
                        expires_at_ms INTEGER,
                        revoked_at_ms INTEGER,
                        last_used_at_ms INTEGER,
                        PRIMARY KEY (tenant_id, id)
                    );
                    INSERT INTO operator_credentials(tenant_id, id, name, scopes, token_hash, created_at_ms)
                        SELECT id, 'opc_' || substr(id, 5), 'initial', 'operator', operator_token_hash, created_at_ms
                        FROM tenants;
                    ALTER TABLE credentials ADD COLUMN token_prefix TEXT;
                    ALTER TABLE credentials ADD COLUMN last_used_at_ms INTEGER;
                    ALTER TABLE agents ADD COLUMN previous_secret_hash TEXT;
                    ALTER TABLE agents ADD COLUMN previous_secret_until_ms INTEGER;
                    """)
        }
        // Issue 15: a credential delegated from another (credentials.delegate), with the sub-agent's label.
        migrator.registerMigration("v18-delegation") { db in
            try db.execute(
                sql: """
                    ALTER TABLE credentials ADD COLUMN parent_id TEXT;
                    ALTER TABLE credentials ADD COLUMN label TEXT;
                    CREATE INDEX credentials_parent ON credentials(tenant_id, parent_id) WHERE parent_id IS NOT NULL;
                    """)
        }
        return migrator
    }
}
