import GRDB
import GRDBSQLite

/// A prepared statement of the ledger's group commit, bound and stepped through SQLite's C API.
///
/// Every charge runs three or four statements on the single writer, and nothing else can commit while it
/// does. GRDB's `StatementArguments` box each value in an existential and check it against the statement on
/// every execution: with the 26 columns of a charge that was about a third of the writer's time per group.
/// Here values are bound directly, in order. Only the ledger's own statements go through this type; they
/// are taken from GRDB's per-connection cache and left reset after each use.
struct LedgerStatement {
    private let statement: Statement
    private let db: Database
    private var index: Int32 = 0
    /// The first bind that failed since the last run (out of memory, say); `run` throws it.
    private var bindFailure: Int32 = SQLITE_OK

    init(_ db: Database, _ sql: String) throws {
        self.db = db
        statement = try db.cachedStatement(sql: sql)
    }

    private var handle: SQLiteStatement { statement.sqliteStatement }

    /// `SQLITE_TRANSIENT`: SQLite copies the bytes before the bind returns.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    mutating func bind(_ text: String) {
        index += 1
        note(text.withCString { sqlite3_bind_text(handle, index, $0, -1, Self.transient) })
    }

    mutating func bind(_ text: String?) {
        guard let text else {
            index += 1
            note(sqlite3_bind_null(handle, index))
            return
        }
        bind(text)
    }

    mutating func bind(_ value: Int64) {
        index += 1
        note(sqlite3_bind_int64(handle, index, value))
    }

    mutating func bind(_ value: Int) { bind(Int64(value)) }

    mutating func bind(_ value: Int64?) {
        guard let value else {
            index += 1
            note(sqlite3_bind_null(handle, index))
            return
        }
        bind(value)
    }

    private mutating func note(_ code: Int32) {
        if code != SQLITE_OK, bindFailure == SQLITE_OK { bindFailure = code }
    }

    /// Bindings are not cleared between runs, so a missing one would silently repeat the previous row's value:
    /// every run must bind every parameter.
    private func checkBindings() throws {
        if bindFailure != SQLITE_OK { throw error(bindFailure) }
        let expected = sqlite3_bind_parameter_count(handle)
        guard index == expected else {
            throw DatabaseError(
                resultCode: .SQLITE_RANGE, message: "bound \(index) of \(expected) parameters", sql: statement.sql)
        }
    }

    /// Runs the statement to completion (an INSERT or DELETE).
    mutating func run() throws {
        defer { reset() }
        try checkBindings()
        let code = sqlite3_step(handle)
        guard code == SQLITE_DONE else { throw error(code) }
    }

    /// Runs a query and returns the first column of its first row as text; nil when it has no row.
    mutating func firstText() throws -> String? {
        defer { reset() }
        try checkBindings()
        switch sqlite3_step(handle) {
        case SQLITE_DONE: return nil
        case SQLITE_ROW: return sqlite3_column_text(handle, 0).map { String(cString: $0) }
        case let code: throw error(code)
        }
    }

    private mutating func reset() {
        sqlite3_reset(handle)
        index = 0
        bindFailure = SQLITE_OK
    }

    private func error(_ code: Int32) -> DatabaseError {
        DatabaseError(
            resultCode: ResultCode(rawValue: code),
            message: db.sqliteConnection.map { String(cString: sqlite3_errmsg($0)) }, sql: statement.sql)
    }
}
