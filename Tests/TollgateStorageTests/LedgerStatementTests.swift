import GRDB
import Testing

@testable import TollgateSQLite

/// The ledger's statements bind through SQLite's C API, where a forgotten value would not be caught by GRDB.
@Suite struct LedgerStatementTests {
    @Test func everyParameterMustBeBound_andAFailedRunLeavesTheStatementReusable() throws {
        let db = try DatabaseQueue()
        try db.write { db in
            try db.execute(sql: "CREATE TABLE t (a TEXT NOT NULL, b INTEGER)")
            var insert = try LedgerStatement(db, "INSERT INTO t(a, b) VALUES (?, ?)")
            insert.bind("first")
            insert.bind(1)
            try insert.run()
            insert.bind("second")
            #expect(throws: DatabaseError.self) { try insert.run() }
            insert.bind(nil as String?)
            insert.bind(3)
            #expect(throws: DatabaseError.self) { try insert.run() }  // NOT NULL
            insert.bind("third")
            insert.bind(3)
            try insert.run()
            var select = try LedgerStatement(db, "SELECT a FROM t WHERE b = ?")
            select.bind(3)
            #expect(try select.firstText() == "third")
            select.bind(2)
            #expect(try select.firstText() == nil)
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM t") == 2)
        }
    }
}
