import Foundation
import TollgateCore
import TollgateJSON
import TollgateStorage

/// How the tenant's writing calls keep the idempotency rule (`IdempotencyCache`): every one of them runs in
/// `keyed`, and writes its change together with its answer under its key (`write(_:answering:for:_:)`, the
/// ledger's group commit, or `insertReservation`), so the key index holds a key exactly when its change was
/// made.
extension TenantActor {
    /// Runs `body` as `call` under the idempotency rule: a retry answered from memory (a replay, a mismatch or
    /// `IN_PROGRESS`), or — the key claimed — looked up in storage (`lookUpStored`: the ledger's transaction
    /// checks the keys of `meter.verify` itself, which spares the hot path a read), and otherwise `body`.
    /// Whatever `body` throws leaves the key free: its retry is judged afresh. Without a key, just `body`.
    func keyed<Value>(
        _ call: KeyedCall?, lookUpStored: Bool = true, _ body: () async throws(TollgateError) -> Answer<Value>
    ) async throws(TollgateError) -> Answer<Value> {
        guard let call else { return try await body() }
        // Claimed before the first suspension point: a concurrent retry now sees IN_PROGRESS.
        if case .replay(let answer) = try keys.claim(call) { return Answer(replay: answer) }
        do {
            if lookUpStored, let stored = try await storedAnswer(call.key) {
                return Answer(replay: try keys.replay(stored: stored, asking: call))
            }
            let answer = try await body()
            // A body that found its key taken meanwhile has remembered that answer already.
            if !answer.replayed { keys.answered(call, answer.json) }
            return answer
        } catch {
            keys.release(call.key)
            throw error
        }
    }

    /// The stored answer under `key`, if any.
    func storedAnswer(_ key: String) async throws(TollgateError) -> IdempotencyRecord? {
        try await storage("looking up an idempotency key") { () async throws(StorageError) in
            try await services.store.idempotencyRecord(tenantId: tenantId, key: key)
        }
    }

    /// The record storing `answer` under `call`'s key.
    func idempotencyRecord(_ call: KeyedCall, answer: JSONValue, at date: Date) -> IdempotencyRecord {
        IdempotencyRecord(
            tenantId: tenantId, key: call.key, method: call.method.rawValue, params: call.fingerprint,
            result: JSONCodec.string(answer), createdAt: date)
    }

    /// What `write(_:answering:for:_:)` did.
    enum Written: Equatable {
        case written
        /// Nothing to change (see `TenantWrite`): nothing was stored, not even the answer.
        case unchanged
        /// The key was taken meanwhile (by another process sharing the store): the answer is its replay.
        case replay(JSONValue)
    }

    /// Writes `change` and, for a keyed call, `answer` under its key, in one transaction.
    func write(_ change: TenantWrite, answering answer: some JSONRepresentable, for call: KeyedCall?, _ what: String)
        async throws(TollgateError) -> Written
    {
        let record = call.map { idempotencyRecord($0, answer: answer.json, at: now) }
        let outcome = try await storage(what) { () async throws(StorageError) in
            try await services.store.write(change, answer: record)
        }
        switch outcome {
        case .written: return .written
        case .unchanged: return .unchanged
        case .keyTaken(let stored): return .replay(try keys.replay(stored: stored, asking: call!))
        }
    }
}

extension TenantActor.Written {
    /// The answer to give: `answer` itself, or the replay of what the key recorded.
    func answer<Value>(_ answer: Answer<Value>) -> Answer<Value> {
        if case .replay(let replay) = self { return Answer(replay: replay) }
        return answer
    }
}
