import Foundation
import GRDB
import Logging
import PostgresNIO
import TollgatePostgres

/// A real database refusing a row, injected with a trigger: how a test makes storage fail inside a transaction
/// that has already written other rows. SQLite through its own file, PostgreSQL through a connection of its own.
enum DatabaseFault {
    /// Makes every insert of a charge under idempotency key `key` fail, until `remove(named:in:)`.
    static func failInserts(ofKey key: String, named name: String, in storageURL: String) async throws {
        if storageURL.hasPrefix("sqlite:") {
            try await sqlite(
                storageURL,
                """
                CREATE TRIGGER \(name) BEFORE INSERT ON charges WHEN NEW.idempotency_key = '\(key)'
                BEGIN SELECT RAISE(ABORT, 'injected failure'); END
                """)
        } else {
            try await postgres(
                storageURL,
                [
                    """
                    CREATE FUNCTION \(name)() RETURNS trigger AS $$ BEGIN
                        IF NEW.idempotency_key = '\(key)' THEN RAISE EXCEPTION 'injected failure'; END IF;
                        RETURN NEW;
                    END $$ LANGUAGE plpgsql
                    """,
                    "CREATE TRIGGER \(name) BEFORE INSERT ON charges FOR EACH ROW EXECUTE FUNCTION \(name)()",
                ])
        }
    }

    static func remove(named name: String, in storageURL: String) async throws {
        if storageURL.hasPrefix("sqlite:") {
            try await sqlite(storageURL, "DROP TRIGGER IF EXISTS \(name)")
        } else {
            try await postgres(
                storageURL, ["DROP TRIGGER IF EXISTS \(name) ON charges", "DROP FUNCTION IF EXISTS \(name)()"])
        }
    }

    private static func sqlite(_ url: String, _ sql: String) async throws {
        let db = try DatabaseQueue(path: String(url.dropFirst("sqlite:".count)))
        try await db.write { db in try db.execute(sql: sql) }
        try db.close()
    }

    private static func postgres(_ url: String, _ statements: [String]) async throws {
        let connection = try await PostgresConnection.connect(
            configuration: try PostgresURL.connectionConfiguration(url), id: 1, logger: Logger(label: "test.fault"))
        do {
            for statement in statements {
                try await connection.query(PostgresQuery(unsafeSQL: statement), logger: Logger(label: "test.fault"))
            }
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }
}
