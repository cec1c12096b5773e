import GRDB
import Synchronization
import TollgateCore
import TollgateStorage

/// The idempotency keys of the ledger, unique per tenant, kept so that recording a charge does not write a
/// random page of an index.
///
/// A charge row carries its key, the request's fingerprint and its answer, and is appended to the end of
/// `charges`. A key index on its own, as a B-tree, puts every new key on a page of its own: with keys spread
/// over the whole index, each group commit dirtied about one index page per charge, and every such page was
/// written to the WAL, fsynced, and copied again by the checkpoint. That was most of what a commit wrote.
///
/// So a key is first recorded in `idempotency_pending` (appended, like the charge) and held in memory here;
/// once `indexAfter` keys are pending, a group commit also moves the oldest `indexChunk` of them, sorted, into
/// `idempotency_index`. Sorted keys that share index pages then share their writes, and the small pending table
/// stays a few hot pages. A group of at least `indexChunk` keys (a batch of events) is such a chunk itself, and
/// goes straight into the index. A key is therefore always in exactly one of the two tables,
/// written in the transaction of its charge or of its move, and in memory while pending; on open the pending table
/// is read back, so nothing depends on memory surviving a crash.
///
/// `record` runs on GRDB's writer queue, inside the transaction of a group commit; `lookUp` runs there too
/// and on readers. Memory follows the database only once a transaction has committed
/// (`afterNextTransaction`), so a group that rolls back leaves no trace here either. A reader may thus miss
/// a key whose charge has just committed but not yet been answered; no caller asks about such a key.
///
/// Memory is only right while this process is the file's one writer, which `OwnerLock` makes sure of.
final class LedgerKeys: Sendable {
    struct Key: Hashable, Sendable {
        var tenantId: String
        var key: String
    }

    /// A pending key: its row in `idempotency_pending`, and its charge's receipt.
    private typealias Entry = (seq: Int64, key: Key, receipt: String)

    private struct Pending {
        /// Pending key → the receipt of its charge.
        var receipts: [Key: String] = [:]
        /// The same keys in the order they were recorded, with their row in `idempotency_pending`.
        var order: [Entry] = []
    }

    private let pending = Mutex(Pending())
    /// How many pending keys make a group commit move some into the index.
    let indexAfter: Int
    /// How many keys one group commit moves into the index.
    let indexChunk: Int

    /// Reads the keys still pending from `db`.
    init(_ db: Database, indexAfter: Int, indexChunk: Int) throws {
        precondition(indexChunk > 0 && indexAfter >= indexChunk)
        self.indexAfter = indexAfter
        self.indexChunk = indexChunk
        var loaded = Pending()
        for row in try Row.fetchAll(
            db, sql: "SELECT seq, tenant_id, key, receipt_id FROM idempotency_pending ORDER BY seq")
        {
            let key = Key(tenantId: row["tenant_id"], key: row["key"])
            let receipt: String = row["receipt_id"]
            loaded.receipts[key] = receipt
            loaded.order.append((row["seq"], key, receipt))
        }
        pending.withLock { $0 = loaded }
    }

    var pendingCount: Int { pending.withLock { $0.order.count } }

    /// What a hold's id starts with: a key pointing at one belongs to a `meter.authorize`.
    static let holdPrefix = "\(IDKind.reservation.rawValue)_"
    /// What a row of `answers` starts with: a key pointing at one belongs to a call that wrote no charge or hold.
    static let answerPrefix = "\(IDKind.answer.rawValue)_"

    /// The receipt recorded under `key`, pending or indexed; nil if the key is free.
    func receipt(_ key: Key, _ db: Database) throws -> String? {
        if let receipt = pending.withLock({ $0.receipts[key] }) { return receipt }
        var select = try LedgerStatement(db, "SELECT receipt_id FROM idempotency_index WHERE tenant_id = ? AND key = ?")
        select.bind(key.tenantId)
        select.bind(key.key)
        return try select.firstText()
    }

    /// The stored answer for `key`, from its charge row (or its hold's, for a key of `meter.authorize`, whose
    /// "receipt" is the reservation id, or its row of `answers`); nil if the key is free.
    func lookUp(_ key: Key, _ db: Database) throws -> IdempotencyRecord? {
        guard let receipt = try receipt(key, db) else { return nil }
        if receipt.hasPrefix(Self.answerPrefix) {
            guard
                let row = try Row.fetchOne(
                    db.cachedStatement(
                        sql: "SELECT method, params, result, created_at_ms FROM answers WHERE tenant_id = ? AND id = ?"
                    ), arguments: [key.tenantId, receipt])
            else {
                throw StorageError.backend("idempotency key \(key.key) names answer \(receipt), which is not stored")
            }
            return IdempotencyRecord(
                tenantId: key.tenantId, key: key.key, method: row["method"], params: row["params"],
                result: row["result"], createdAt: Timestamp.date(millis: row["created_at_ms"]))
        }
        if receipt.hasPrefix(Self.holdPrefix) {
            guard
                let row = try Row.fetchOne(
                    db.cachedStatement(
                        sql: """
                            SELECT request_params, result, created_at_ms FROM reservations WHERE tenant_id = ? AND id =
                                ?
                            """), arguments: [key.tenantId, receipt])
            else {
                throw StorageError.backend("idempotency key \(key.key) names hold \(receipt), which is not stored")
            }
            return IdempotencyRecord(
                tenantId: key.tenantId, key: key.key, method: "meter.authorize",
                params: row["request_params"] ?? "", result: row["result"] ?? "",
                createdAt: Timestamp.date(millis: row["created_at_ms"]))
        }
        guard
            let row = try Row.fetchOne(
                db.cachedStatement(
                    sql: """
                        SELECT request_method, request_params, result, at_ms FROM charges WHERE tenant_id = ? AND
                            receipt_id = ?
                        """), arguments: [key.tenantId, receipt])
        else {
            throw StorageError.backend("idempotency key \(key.key) names receipt \(receipt), which is not stored")
        }
        return IdempotencyRecord(
            tenantId: key.tenantId, key: key.key, method: row["request_method"],
            params: row["request_params"], result: row["result"],
            createdAt: Timestamp.date(millis: row["at_ms"]))
    }

    /// Within a group commit: records the keys of the charges just inserted (in their order) and, if enough
    /// are pending, moves the oldest into the index.
    func record(_ recorded: [(Key, receipt: String)], _ db: Database) throws {
        // A group as large as a chunk (a batch of events) is a sorted chunk already: its keys go straight into the
        // index, one write each, rather than through the pending table (three). Memory has nothing to follow.
        if recorded.count >= indexChunk {
            try insertIntoIndex(recorded.map { ($0.0, $0.receipt) }, db)
            return
        }
        var insertPending = try LedgerStatement(
            db, "INSERT INTO idempotency_pending(tenant_id, key, receipt_id) VALUES (?, ?, ?)")
        var added: [Entry] = []
        added.reserveCapacity(recorded.count)
        for (key, receipt) in recorded {
            insertPending.bind(key.tenantId)
            insertPending.bind(key.key)
            insertPending.bind(receipt)
            try insertPending.run()
            added.append((db.lastInsertedRowID, key, receipt))
        }

        // Once enough are pending, the oldest move to the index, sorted so that neighbours share pages. A group
        // adds fewer keys than a chunk, so the pending keys never grow past `indexAfter` and a group.
        var moved: [Entry] = []
        let oldest = pending.withLock { state -> ArraySlice<Entry>? in
            state.order.count + added.count >= indexAfter ? state.order.prefix(indexChunk) : nil
        }
        if let oldest {
            moved = Array(oldest) + added.prefix(indexChunk - oldest.count)
            try insertIntoIndex(moved.map { ($0.key, $0.receipt) }, db)
            try db.execute(sql: "DELETE FROM idempotency_pending WHERE seq <= ?", arguments: [moved.last!.seq])
        }

        db.afterNextTransaction { [added, moved] _ in
            self.pending.withLock { state in
                for entry in added { state.receipts[entry.key] = entry.receipt }
                state.order += added
                for entry in moved { state.receipts[entry.key] = nil }
                state.order.removeFirst(moved.count)
            }
        }
    }

    /// Inserts `keys` into the index in the index's order, so that neighbours share their pages' writes.
    private func insertIntoIndex(_ keys: [(key: Key, receipt: String)], _ db: Database) throws {
        var insert = try LedgerStatement(
            db, "INSERT INTO idempotency_index(tenant_id, key, receipt_id) VALUES (?, ?, ?)")
        for entry in keys.sorted(by: { ($0.key.tenantId, $0.key.key) < ($1.key.tenantId, $1.key.key) }) {
            insert.bind(entry.key.tenantId)
            insert.bind(entry.key.key)
            insert.bind(entry.receipt)
            try insert.run()
        }
    }
}
