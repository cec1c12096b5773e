import TollgateCore
import TollgateStorage

/// The one idempotency rule of the writing agent methods (`meter.verify`, `meter.commit`, `meter.authorize`):
/// the same key with the same method and params replays the first answer unchanged (plus `replayed: true`);
/// another method or other params is `IDEMPOTENCY_MISMATCH` naming what differs; a key whose first call is
/// still being processed is `IN_PROGRESS`. Keys are one namespace per tenant, in memory (`RecentKeys`) and in
/// storage (the ledger's key index, which holds the keys of holds too).
extension TenantActor {
    /// The answer already given under `key`, as far as memory knows: a replay, a mismatch or IN_PROGRESS; nil
    /// when the key is not known here (it may still be in storage).
    func recall(_ key: String, method: String, fingerprint: String) throws(TollgateError) -> JSONValue? {
        switch recentKeys[key] {
        case nil: return nil
        case .inFlight?: throw .inProgress
        case .done(let storedMethod, let storedFingerprint, let result)?:
            return try Self.replay(
                method: storedMethod, fingerprint: storedFingerprint, result: result,
                asking: method, fingerprint)
        }
    }

    /// The answer to a key found in storage: its replay, or a mismatch. Remembered, so the next retry is
    /// answered from memory.
    func replay(stored: IdempotencyRecord, asking method: String, _ fingerprint: String) throws(TollgateError)
        -> JSONValue
    {
        guard let result = try? JSONCodec.parse(stored.result) else {
            // Only a hold recorded before keys were one namespace has no stored answer to replay.
            throw .idempotencyMismatch(fields: stored.method == method ? ["params"] : ["method"])
        }
        // Commits recorded before they had a method of their own were stored as `meter.verify`; their keys
        // (`commit:<reservation>`) say what they are, so a commit retried across the upgrade still replays.
        let storedMethod =
            stored.method == "meter.verify" && stored.key.hasPrefix(Self.commitKey("\(IDKind.reservation.rawValue)_"))
            ? "meter.commit" : stored.method
        recentKeys.set(stored.key, .done(method: storedMethod, fingerprint: stored.params, result: result))
        return try Self.replay(
            method: storedMethod, fingerprint: stored.params, result: result, asking: method, fingerprint)
    }

    /// The first answer with `replayed: true`, if the method and params are the same.
    static func replay(
        method storedMethod: String, fingerprint storedFingerprint: String, result: JSONValue,
        asking method: String, _ fingerprint: String
    ) throws(TollgateError) -> JSONValue {
        guard storedMethod == method else { throw .idempotencyMismatch(fields: ["method"]) }
        guard storedFingerprint == fingerprint else {
            throw .idempotencyMismatch(fields: Fingerprint.differingFields(storedFingerprint, fingerprint))
        }
        guard case .object(var object) = result else { return result }
        object["replayed"] = true
        return .object(object)
    }

    /// The stored answer under `key`, if any: what a call not known in memory looks up before it writes.
    func storedAnswer(_ key: String) async throws(TollgateError) -> IdempotencyRecord? {
        do { return try await services.store.idempotencyRecord(tenantId: tenantId, key: key) } catch {
            services.logger.error(
                "idempotency look-up failed", metadata: ["tenant": "\(tenantId)", "error": "\(error)"])
            throw .unavailable("storage is unavailable; nothing was recorded")
        }
    }
}
