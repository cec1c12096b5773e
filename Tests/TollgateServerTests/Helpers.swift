import Foundation
import Synchronization
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

/// The reason of the error `body` throws, or nil if it succeeds.
func reason(_ body: () async throws -> JSONValue) async -> String? {
    do {
        _ = try await body()
        return nil
    } catch let error as RPCError { return error.reason ?? "code \(error.code)" } catch {
        return "\(error)"
    }
}

func rpcError(_ body: () async throws -> JSONValue) async -> RPCError? {
    do {
        _ = try await body()
        return nil
    } catch let error as RPCError { return error } catch { return nil }
}

/// Storage URLs a test runs against: the in-memory store (unless `memory` is false), a fresh SQLite file named
/// after `name`, and PostgreSQL when `TOLLGATE_TEST_POSTGRES_URL` is set (CI sets it; without it those cases
/// are skipped, not failed).
func storageBackends(_ name: String, memory: Bool = true) -> [String] {
    var urls = memory ? ["memory:"] : []
    let file = FileManager.default.temporaryDirectory.appendingPathComponent(
        "tollgate-\(name)-\(UUID().uuidString).sqlite")
    urls.append("sqlite:" + file.path)
    if let postgres = ProcessInfo.processInfo.environment["TOLLGATE_TEST_POSTGRES_URL"] { urls.append(postgres) }
    return urls
}

func verifyParams(_ key: String, tool: String = "transform", extra: [String: JSONValue] = [:]) -> JSONValue {
    var params: [String: JSONValue] = ["tool": .string(tool), "idempotencyKey": .string(key)]
    for (field, value) in extra { params[field] = value }
    return .object(params)
}

extension JSONValue {
    var string: String? { stringValue }
}

/// Waits (bounded) until `condition` holds; fails the test if it never does.
func eventually(_ what: String, timeoutMs: Int = 5000, _ condition: () async -> Bool) async {
    for _ in 0..<(timeoutMs / 10) {
        if await condition() { return }
        try? await Task.sleep(for: .milliseconds(10))
    }
    Issue.record("timed out waiting for \(what)")
}

/// Collects the `alert` notifications of one connection as they arrive, so a test can wait for one kind
/// without losing the others.
final class AlertInbox: Sendable {
    private let received = Mutex<[JSONValue]>([])

    init(_ connection: TollgateConnection) {
        let stream = connection.notifications
        Task { [weak self] in
            for await message in stream where message["method"]?.stringValue == "alert" {
                guard let params = message["params"] else { continue }
                self?.received.withLock { $0.append(params) }
            }
        }
    }

    /// Every alert received and not yet taken.
    var all: [JSONValue] { received.withLock { $0 } }

    /// The first alert of `kind` not yet taken, waiting at most `withinMs`.
    func next(_ kind: String, withinMs: Int = 5000) async throws -> JSONValue {
        for _ in 0..<(withinMs / 10) {
            let found = received.withLock { list -> JSONValue? in
                guard let index = list.firstIndex(where: { $0["kind"]?.stringValue == kind }) else { return nil }
                return list.remove(at: index)
            }
            if let found { return found }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw AlertTimeout(kind: kind)
    }

    struct AlertTimeout: Error { var kind: String }
}
