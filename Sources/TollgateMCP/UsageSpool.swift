import Foundation
import GRDB
import TollgateJSON

/// The proxy's durable spool: metered work Tollgate has not taken yet, in a SQLite file, so that nothing is lost
/// while Tollgate cannot be reached and nothing is counted twice when it can again. Each entry is sent under the
/// idempotency key it was spooled with, whichever proxy run sends it, as often as it takes.
///
/// An entry is one of:
/// - `commit`: the usage of a call run under a hold whose commit could not be delivered;
/// - `record`: the usage of a call run without a hold (`--on-unavailable allow`), or of a held call whose hold
///   expired before its commit arrived: recorded with `meter.verify` under `<call key>.r`;
/// - `close`: a Tollgate session to close once the entries before it are delivered.
///
/// Entries belong to the credential that spooled them (`credential`: a hash of its token, never the token), and
/// are sent only under that credential, so that one agent is never charged for another's calls. An entry Tollgate
/// refuses for good (a cap, a revoked credential) stays in the file with the reason (`refused`), for an operator.
public final class UsageSpool: Sendable {
    public enum Kind: String, Sendable { case commit, record, close }

    public struct Entry: Sendable, Equatable {
        /// Its place in the spool: entries are sent in this order.
        public var seq: Int64
        public var kind: Kind
        public var credential: String
        public var sessionId: String?
        public var tool: String?
        /// The proxy's key of the call (or of the close).
        public var key: String
        public var reservationId: String?
        /// The `usage` object sent to Tollgate.
        public var usage: JSONValue?
        public var spooledAt: Date
        /// Why Tollgate refused it, once it has; refused entries are not sent again.
        public var refused: String?

        public init(
            kind: Kind, credential: String, sessionId: String?, tool: String? = nil, key: String,
            reservationId: String? = nil, usage: JSONValue? = nil, spooledAt: Date = Date()
        ) {
            self.seq = 0
            self.kind = kind
            self.credential = credential
            self.sessionId = sessionId
            self.tool = tool
            self.key = key
            self.reservationId = reservationId
            self.usage = usage
            self.spooledAt = spooledAt
        }
    }

    public let path: String
    private let queue: DatabaseQueue

    /// Opens (or creates) the spool at `path`, and the directories above it.
    public init(path: String) throws {
        self.path = path
        try FileManager.default.createDirectory(
            at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
        var configuration = Configuration()
        // Several proxy runs may share one spool: they wait for each other's short writes.
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            // The rollback journal with `synchronous=FULL`: an entry written is on disk before the call goes on.
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        queue = try DatabaseQueue(path: path, configuration: configuration)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-spool") { db in
            try db.execute(
                sql: """
                    CREATE TABLE spool (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        kind TEXT NOT NULL CHECK (kind IN ('commit', 'record', 'close')),
                        credential TEXT NOT NULL,
                        session_id TEXT,
                        tool TEXT,
                        call_key TEXT NOT NULL,
                        reservation_id TEXT,
                        usage TEXT,
                        spooled_at REAL NOT NULL,
                        refused TEXT
                    );
                    CREATE INDEX spool_pending ON spool (credential, seq) WHERE refused IS NULL;
                    """)
        }
        try migrator.migrate(queue)
    }

    /// Adds an entry; it is on disk when this returns.
    @discardableResult
    public func add(_ entry: Entry) throws -> Int64 {
        try queue.write { db in
            try db.execute(
                sql: """
                    INSERT INTO spool (kind, credential, session_id, tool, call_key, reservation_id, usage, spooled_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    entry.kind.rawValue, entry.credential, entry.sessionId, entry.tool, entry.key, entry.reservationId,
                    entry.usage.map(JSONCodec.string), entry.spooledAt.timeIntervalSince1970,
                ])
            return db.lastInsertedRowID
        }
    }

    /// The entries still to send under `credential`, oldest first.
    public func pending(credential: String, limit: Int = 256) throws -> [Entry] {
        try entries(where: "credential = ? AND refused IS NULL", [credential], limit: limit)
    }

    /// Every entry, refused ones included, oldest first (for an operator, and tests).
    public func all() throws -> [Entry] { try entries(where: "1", [], limit: Int.max) }

    /// How many entries wait to be sent, by credential and in all.
    public func pendingCount(credential: String? = nil) throws -> Int {
        try queue.read { db in
            if let credential {
                return try Int.fetchOne(
                    db, sql: "SELECT count(*) FROM spool WHERE refused IS NULL AND credential = ?",
                    arguments: [credential]) ?? 0
            }
            return try Int.fetchOne(db, sql: "SELECT count(*) FROM spool WHERE refused IS NULL") ?? 0
        }
    }

    /// Tollgate took it: it leaves the spool.
    public func remove(_ seq: Int64) throws {
        try queue.write { db in try db.execute(sql: "DELETE FROM spool WHERE seq = ?", arguments: [seq]) }
    }

    /// The entry is to be sent another way from now on (a commit whose hold is gone becomes a record; a record
    /// whose session is closed is sent without it).
    public func replace(_ entry: Entry) throws {
        try queue.write { db in
            try db.execute(
                sql: "UPDATE spool SET kind = ?, session_id = ?, reservation_id = ? WHERE seq = ?",
                arguments: [entry.kind.rawValue, entry.sessionId, entry.reservationId, entry.seq])
        }
    }

    /// Tollgate refused it for good: it stays, with the reason, and is not sent again.
    public func refuse(_ seq: Int64, reason: String) throws {
        try queue.write { db in
            try db.execute(sql: "UPDATE spool SET refused = ? WHERE seq = ?", arguments: [reason, seq])
        }
    }

    private func entries(where condition: String, _ arguments: StatementArguments, limit: Int) throws -> [Entry] {
        try queue.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM spool WHERE \(condition) ORDER BY seq LIMIT \(limit)", arguments: arguments
            ).map { row in
                var entry = Entry(
                    kind: Kind(rawValue: row["kind"]) ?? .record, credential: row["credential"],
                    sessionId: row["session_id"], tool: row["tool"], key: row["call_key"],
                    reservationId: row["reservation_id"],
                    usage: (row["usage"] as String?).flatMap { try? JSONCodec.parse(Array($0.utf8)) },
                    spooledAt: Date(timeIntervalSince1970: row["spooled_at"]))
                entry.seq = row["seq"]
                entry.refused = row["refused"]
                return entry
            }
        }
    }
}
