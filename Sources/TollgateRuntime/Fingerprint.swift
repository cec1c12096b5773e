import TollgateCore
import TollgateIngest
import TollgateJSON

/// What idempotency compares: the params and who sent them. A key reused by another agent of the same
/// tenant is a mismatch (field `agentId`), never a replay of someone else's receipt.
enum Fingerprint {
    static func make(params: JSONValue, principal: String) -> String {
        IdempotencyGate.fingerprint(params, principal: principal)
    }

    /// The top-level fields in which two fingerprints differ, for `IDEMPOTENCY_MISMATCH`'s `data.fields`.
    static func differingFields(_ first: String, _ second: String) -> [String] {
        guard let a = try? JSONCodec.parse(first), let b = try? JSONCodec.parse(second) else { return ["params"] }
        var fields: [String] = []
        if a["agentId"] != b["agentId"] { fields.append("agentId") }
        let left = a["params"]?.objectValue ?? [:]
        let right = b["params"]?.objectValue ?? [:]
        for key in Set(left.keys).union(right.keys).sorted() where left[key] != right[key] { fields.append(key) }
        return fields
    }
}
