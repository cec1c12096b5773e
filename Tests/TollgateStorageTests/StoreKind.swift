import Foundation
import Testing
import TollgatePostgres
import TollgateSQLite
import TollgateStorage

/// The backends the conformance suite runs against. PostgreSQL joins when `TOLLGATE_TEST_POSTGRES_URL` is set
/// (CI sets it); without it the PostgreSQL cases are skipped, not failed.
enum StoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case memory, sqlite, postgres

    static let postgresURL = ProcessInfo.processInfo.environment["TOLLGATE_TEST_POSTGRES_URL"]

    static var available: [StoreKind] { postgresURL == nil ? [.memory, .sqlite] : [.memory, .sqlite, .postgres] }

    var testDescription: String { rawValue }

    func open() async throws -> any TollgateStore {
        switch self {
        case .memory: return InMemoryStore()
        case .sqlite: return try SQLiteStore(path: Self.temporarySQLitePath())
        case .postgres: return try await PostgresStore(url: Self.postgresURL!)
        }
    }

    static func temporarySQLitePath() -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tollgate-tests-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory.appendingPathComponent("tollgate.sqlite").path
    }
}

extension SQLiteStore.Configuration {
    static func keys(indexAfter: Int, chunk: Int) -> Self {
        var configuration = Self()
        configuration.keysIndexAfter = indexAfter
        configuration.keysIndexChunk = chunk
        return configuration
    }

    static func wal(framesMax: Int) -> Self {
        var configuration = Self()
        configuration.walFramesMax = framesMax
        return configuration
    }
}
