import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateTesting

/// The reason of the error `body` throws, or nil if it succeeds.
func reason(_ body: () async throws -> JSONValue) async -> String? {
    do { _ = try await body(); return nil } catch let error as RPCError { return error.reason ?? "code \(error.code)" } catch {
        return "\(error)"
    }
}

func rpcError(_ body: () async throws -> JSONValue) async -> RPCError? {
    do { _ = try await body(); return nil } catch let error as RPCError { return error } catch { return nil }
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
