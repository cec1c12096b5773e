// swift-format-ignore-file
// (Migrations are never edited once shipped, not even their layout.)
/// The PostgreSQL schema, as named migrations applied in order and recorded in `tollgate_migrations`.
/// A migration that has shipped is never edited; a change is a new entry at the end.
/// Every table is keyed by `tenant_id` first, so the schema can be distributed by tenant.
enum PostgresMigrations {
    static let all: [(name: String, sql: [String])] = [
        ("v1-walking-skeleton", [
            """
            CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)
            """,
            """
            CREATE TABLE tenants (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                operator_token_hash TEXT NOT NULL UNIQUE,
                created_at_ms BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE customers (
                tenant_id TEXT NOT NULL REFERENCES tenants(id),
                id TEXT NOT NULL,
                name TEXT NOT NULL,
                external_id TEXT,
                PRIMARY KEY (tenant_id, id)
            )
            """,
            """
            CREATE TABLE teams (
                tenant_id TEXT NOT NULL,
                id TEXT NOT NULL,
                customer_id TEXT NOT NULL,
                name TEXT NOT NULL,
                PRIMARY KEY (tenant_id, id),
                FOREIGN KEY (tenant_id, customer_id) REFERENCES customers(tenant_id, id)
            )
            """,
            """
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
            )
            """,
            """
            CREATE TABLE credentials (
                tenant_id TEXT NOT NULL,
                id TEXT NOT NULL,
                agent_id TEXT NOT NULL,
                scopes TEXT NOT NULL,
                expires_at_ms BIGINT NOT NULL,
                revoked_at_ms BIGINT,
                spend_limit_nanos BIGINT CHECK (spend_limit_nanos IS NULL OR spend_limit_nanos >= 0),
                token_hash TEXT NOT NULL UNIQUE,
                PRIMARY KEY (tenant_id, id),
                FOREIGN KEY (tenant_id, agent_id) REFERENCES agents(tenant_id, id)
            )
            """,
            """
            CREATE TABLE plans (
                tenant_id TEXT NOT NULL REFERENCES tenants(id),
                plan_id TEXT NOT NULL,
                name TEXT NOT NULL,
                version BIGINT NOT NULL CHECK (version >= 1),
                document TEXT NOT NULL,
                created_at_ms BIGINT NOT NULL,
                PRIMARY KEY (tenant_id, name, version),
                UNIQUE (tenant_id, plan_id, version)
            )
            """,
            """
            CREATE TABLE subscriptions (
                tenant_id TEXT NOT NULL,
                id TEXT NOT NULL,
                customer_id TEXT NOT NULL,
                plan_id TEXT NOT NULL,
                version BIGINT NOT NULL,
                starts_at_ms BIGINT NOT NULL,
                PRIMARY KEY (tenant_id, id),
                FOREIGN KEY (tenant_id, customer_id) REFERENCES customers(tenant_id, id),
                FOREIGN KEY (tenant_id, plan_id, version) REFERENCES plans(tenant_id, plan_id, version)
            )
            """,
            """
            CREATE TABLE caps (
                tenant_id TEXT NOT NULL REFERENCES tenants(id),
                id TEXT NOT NULL,
                scope TEXT NOT NULL,
                scope_id TEXT NOT NULL,
                period TEXT NOT NULL,
                limit_nanos BIGINT NOT NULL CHECK (limit_nanos >= 0),
                warn_at_percent BIGINT CHECK (warn_at_percent BETWEEN 1 AND 100),
                PRIMARY KEY (tenant_id, id),
                UNIQUE (tenant_id, scope, scope_id, period)
            )
            """,
            """
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
                plan_version BIGINT NOT NULL,
                tool TEXT NOT NULL,
                quantity BIGINT NOT NULL CHECK (quantity >= 0),
                input_tokens BIGINT NOT NULL CHECK (input_tokens >= 0),
                output_tokens BIGINT NOT NULL CHECK (output_tokens >= 0),
                reasoning_tokens BIGINT NOT NULL CHECK (reasoning_tokens >= 0),
                duration_ms BIGINT NOT NULL CHECK (duration_ms >= 0),
                status TEXT,
                cost_nanos BIGINT NOT NULL,
                provider_cost_nanos BIGINT NOT NULL,
                currency TEXT NOT NULL,
                idempotency_key TEXT NOT NULL,
                at_ms BIGINT NOT NULL,
                day BIGINT NOT NULL,
                PRIMARY KEY (tenant_id, receipt_id)
            )
            """,
            "CREATE INDEX charges_by_agent ON charges(tenant_id, agent_id, at_ms)",
            "CREATE INDEX charges_by_customer ON charges(tenant_id, customer_id, at_ms)",
            """
            CREATE TABLE idempotency (
                tenant_id TEXT NOT NULL,
                key TEXT NOT NULL,
                method TEXT NOT NULL,
                params TEXT NOT NULL,
                result TEXT NOT NULL,
                created_at_ms BIGINT NOT NULL,
                PRIMARY KEY (tenant_id, key)
            )
            """,
        ]),
        ("v2-plan-swaps", [
            """
            CREATE TABLE plan_swaps (
                tenant_id TEXT NOT NULL,
                id TEXT NOT NULL,
                subscription_id TEXT NOT NULL,
                plan_id TEXT NOT NULL,
                version BIGINT NOT NULL,
                effective_at_ms BIGINT NOT NULL,
                PRIMARY KEY (tenant_id, id),
                FOREIGN KEY (tenant_id, subscription_id) REFERENCES subscriptions(tenant_id, id),
                FOREIGN KEY (tenant_id, plan_id, version) REFERENCES plans(tenant_id, plan_id, version)
            )
            """,
        ]),
        ("v3-sessions-alerts", [
            """
            CREATE TABLE sessions (
                tenant_id TEXT NOT NULL,
                id TEXT NOT NULL,
                agent_id TEXT NOT NULL,
                team_id TEXT NOT NULL,
                customer_id TEXT NOT NULL,
                opened_at_ms BIGINT NOT NULL,
                closed_at_ms BIGINT,
                outcome TEXT,
                metadata TEXT,
                calls BIGINT NOT NULL DEFAULT 0,
                input_tokens BIGINT NOT NULL DEFAULT 0,
                output_tokens BIGINT NOT NULL DEFAULT 0,
                reasoning_tokens BIGINT NOT NULL DEFAULT 0,
                duration_ms BIGINT NOT NULL DEFAULT 0,
                cost_nanos BIGINT NOT NULL DEFAULT 0,
                provider_cost_nanos BIGINT NOT NULL DEFAULT 0,
                errors BIGINT NOT NULL DEFAULT 0,
                last_call_at_ms BIGINT,
                PRIMARY KEY (tenant_id, id),
                FOREIGN KEY (tenant_id, agent_id) REFERENCES agents(tenant_id, id)
            )
            """,
            "CREATE INDEX sessions_open ON sessions(tenant_id, closed_at_ms, opened_at_ms)",
            """
            CREATE TABLE alerts (
                tenant_id TEXT NOT NULL,
                id TEXT NOT NULL,
                kind TEXT NOT NULL,
                at_ms BIGINT NOT NULL,
                body TEXT NOT NULL,
                PRIMARY KEY (tenant_id, id)
            )
            """,
            "CREATE INDEX alerts_by_time ON alerts(tenant_id, at_ms)",
        ]),
        ("v4-reservations", [
            """
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
                held_nanos BIGINT NOT NULL CHECK (held_nanos >= 0),
                currency TEXT NOT NULL,
                created_at_ms BIGINT NOT NULL,
                expires_at_ms BIGINT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('held', 'committed', 'released', 'expired')),
                receipt_id TEXT,
                PRIMARY KEY (tenant_id, id),
                UNIQUE (tenant_id, idempotency_key)
            )
            """,
            "CREATE INDEX reservations_held ON reservations(tenant_id, state)",
        ]),
        // Issue 10's repairs: a session's currency kept with its final record; a hold's key in the one key
        // namespace (the `idempotency` table) with its answer; an open session's opening moved back to its
        // first charge, which calls racing to open it could precede by a millisecond.
        ("v6-one-key-namespace", [
            "ALTER TABLE sessions ADD COLUMN currency TEXT",
            """
            UPDATE sessions s SET currency = (
                SELECT MAX(c.currency) FROM charges c WHERE c.tenant_id = s.tenant_id AND c.agent_id = s.agent_id
                    AND c.session_id = s.id)
            WHERE s.closed_at_ms IS NOT NULL
            """,
            """
            UPDATE sessions s SET opened_at_ms = LEAST(s.opened_at_ms, COALESCE((
                SELECT MIN(c.at_ms) FROM charges c WHERE c.tenant_id = s.tenant_id AND c.agent_id = s.agent_id
                    AND c.session_id = s.id), s.opened_at_ms))
            WHERE s.closed_at_ms IS NULL
            """,
        ]),
        // Issue 12: the model a call reported (`usage.model`), '' for none. Named as SQLite's v8 (SQLite's v7
        // made a table PostgreSQL never needed: its `idempotency` table keeps every answer).
        ("v8-charge-model", ["ALTER TABLE charges ADD COLUMN model TEXT NOT NULL DEFAULT ''"]),
        // Issue 13: each charge's place in an agent's task; only charges with a parent are indexed by invocation.
        ("v9-invocation-graph", [
            "ALTER TABLE charges ADD COLUMN invocation_id TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE charges ADD COLUMN parent_invocation_id TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE charges ADD COLUMN retry_count BIGINT NOT NULL DEFAULT 0",
            "ALTER TABLE charges ADD COLUMN parallel BOOLEAN NOT NULL DEFAULT false",
            "UPDATE charges SET invocation_id = idempotency_key",
            """
            CREATE INDEX charges_invocation_children ON charges(tenant_id, invocation_id)
            WHERE parent_invocation_id <> ''
            """,
        ]),
        // Issue 13: a held call's place in its task, for the charge its commit records.
        ("v10-hold-invocation-graph", [
            "ALTER TABLE reservations ADD COLUMN parent_invocation_id TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE reservations ADD COLUMN retry_count BIGINT NOT NULL DEFAULT 0",
            "ALTER TABLE reservations ADD COLUMN parallel BOOLEAN NOT NULL DEFAULT false",
        ]),
        // Issue 14: billing periods are a subscription's own, in its customer's time zone (UTC months before).
        ("v11-billing-periods", [
            "ALTER TABLE customers ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC'",
            "ALTER TABLE subscriptions ADD COLUMN period_cadence TEXT NOT NULL DEFAULT 'month'",
            "ALTER TABLE subscriptions ADD COLUMN period_anchor BIGINT NOT NULL DEFAULT 1",
        ]),
        // Issue 14: invoices, as SQLite's v12 (its comment says why).
        ("v12-invoices", [
            "ALTER TABLE charges ADD COLUMN occurred_at_ms BIGINT",
            "ALTER TABLE customers ADD COLUMN tax_rate_nanos BIGINT NOT NULL DEFAULT 0",
            """
            CREATE TABLE invoices (
                tenant_id TEXT NOT NULL,
                id TEXT NOT NULL,
                customer_id TEXT NOT NULL,
                subscription_id TEXT NOT NULL,
                period_start_ms BIGINT NOT NULL,
                period_end_ms BIGINT NOT NULL,
                status TEXT NOT NULL,
                document TEXT NOT NULL,
                created_at_ms BIGINT NOT NULL,
                PRIMARY KEY (tenant_id, id),
                UNIQUE (tenant_id, subscription_id, period_start_ms)
            )
            """,
            "CREATE INDEX invoices_by_customer ON invoices(tenant_id, customer_id, period_start_ms)",
            """
            CREATE TABLE invoice_line_receipts (
                tenant_id TEXT NOT NULL,
                invoice_id TEXT NOT NULL,
                line BIGINT NOT NULL,
                receipt_id TEXT NOT NULL,
                PRIMARY KEY (tenant_id, invoice_id, line, receipt_id)
            )
            """,
        ]),
        // Issue 14: credit, as SQLite's v13 (its comment says why).
        ("v13-credits", [
            "ALTER TABLE customers ADD COLUMN block_at_zero_credit BOOLEAN NOT NULL DEFAULT false",
            """
            CREATE TABLE credit_grants (
                tenant_id TEXT NOT NULL,
                id TEXT NOT NULL,
                customer_id TEXT NOT NULL,
                currency TEXT NOT NULL,
                amount_nanos BIGINT NOT NULL,
                kind TEXT NOT NULL,
                priority BIGINT NOT NULL,
                granted_at_ms BIGINT NOT NULL,
                expires_at_ms BIGINT,
                description TEXT NOT NULL,
                PRIMARY KEY (tenant_id, id),
                FOREIGN KEY (tenant_id, customer_id) REFERENCES customers(tenant_id, id)
            )
            """,
            """
            CREATE TABLE credit_applications (
                tenant_id TEXT NOT NULL,
                invoice_id TEXT NOT NULL,
                grant_id TEXT NOT NULL,
                amount_nanos BIGINT NOT NULL,
                PRIMARY KEY (tenant_id, invoice_id, grant_id)
            )
            """,
        ]),
        // Issue 14: discounts, as SQLite's v14.
        ("v14-discounts", [
            """
            CREATE TABLE discounts (
                tenant_id TEXT NOT NULL,
                id TEXT NOT NULL,
                customer_id TEXT NOT NULL,
                percent_off_nanos BIGINT,
                amount_off_nanos BIGINT,
                currency TEXT,
                starts_at_ms BIGINT NOT NULL,
                ends_at_ms BIGINT,
                description TEXT NOT NULL,
                created_at_ms BIGINT NOT NULL,
                PRIMARY KEY (tenant_id, id),
                FOREIGN KEY (tenant_id, customer_id) REFERENCES customers(tenant_id, id),
                CHECK ((percent_off_nanos IS NULL) <> (amount_off_nanos IS NULL))
            )
            """,
        ]),
        // Issue 14: the Stripe outbox, as SQLite's v15.
        ("v15-stripe-outbox", [
            """
            CREATE TABLE stripe_outbox (
                tenant_id TEXT NOT NULL,
                invoice_id TEXT NOT NULL,
                kind TEXT NOT NULL,
                state TEXT NOT NULL,
                progress TEXT NOT NULL,
                attempts BIGINT NOT NULL,
                next_attempt_at_ms BIGINT NOT NULL,
                last_error TEXT,
                created_at_ms BIGINT NOT NULL,
                updated_at_ms BIGINT NOT NULL,
                PRIMARY KEY (tenant_id, invoice_id, kind)
            )
            """,
            "CREATE INDEX stripe_outbox_due ON stripe_outbox(next_attempt_at_ms) WHERE state = 'pending'",
            """
            CREATE TABLE stripe_customers (
                tenant_id TEXT NOT NULL,
                customer_id TEXT NOT NULL,
                stripe_customer_id TEXT NOT NULL,
                PRIMARY KEY (tenant_id, customer_id)
            )
            """,
        ]),
        // Issue 14: products, as SQLite's v16.
        ("v16-products", [
            """
            CREATE TABLE products (
                tenant_id TEXT NOT NULL,
                id TEXT NOT NULL,
                name TEXT NOT NULL,
                kind TEXT NOT NULL,
                catalog TEXT NOT NULL,
                closed BOOLEAN NOT NULL,
                created_at_ms BIGINT NOT NULL,
                PRIMARY KEY (tenant_id, id),
                UNIQUE (tenant_id, name)
            )
            """,
            "ALTER TABLE subscriptions ADD COLUMN product_id TEXT",
            "ALTER TABLE reservations ADD COLUMN product_id TEXT",
        ]),
        // Issue 15: operator credentials, token prefixes, last use and client secret rotation, as SQLite's v17.
        ("v17-credentials", [
            """
            CREATE TABLE operator_credentials (
                tenant_id TEXT NOT NULL REFERENCES tenants(id),
                id TEXT NOT NULL,
                name TEXT NOT NULL,
                scopes TEXT NOT NULL,
                token_hash TEXT NOT NULL UNIQUE,
                token_prefix TEXT,
                created_at_ms BIGINT NOT NULL,
                expires_at_ms BIGINT,
                revoked_at_ms BIGINT,
                last_used_at_ms BIGINT,
                PRIMARY KEY (tenant_id, id)
            )
            """,
            """
            INSERT INTO operator_credentials(tenant_id, id, name, scopes, token_hash, created_at_ms)
                SELECT id, 'opc_' || substr(id, 5), 'initial', 'operator', operator_token_hash, created_at_ms
                FROM tenants
            """,
            "ALTER TABLE credentials ADD COLUMN token_prefix TEXT",
            "ALTER TABLE credentials ADD COLUMN last_used_at_ms BIGINT",
            "ALTER TABLE agents ADD COLUMN previous_secret_hash TEXT",
            "ALTER TABLE agents ADD COLUMN previous_secret_until_ms BIGINT",
        ]),
        // Issue 15: delegated credentials, as SQLite's v18.
        ("v18-delegation", [
            "ALTER TABLE credentials ADD COLUMN parent_id TEXT",
            "ALTER TABLE credentials ADD COLUMN label TEXT",
            "CREATE INDEX credentials_parent ON credentials(tenant_id, parent_id) WHERE parent_id IS NOT NULL",
        ]),
    ]
}
