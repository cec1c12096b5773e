import TollgateCore
import TollgateJSON
import TollgateStorage

/// The tenant's one idempotency rule, for every writing method:
///
/// - the same key, method and params (and sender) → the first answer, unchanged, with `replayed: true`;
/// - the same key with another method or other params → `IDEMPOTENCY_MISMATCH` naming what differs;
/// - a key whose first call is still being processed → `IN_PROGRESS`;
/// - a call that stored nothing (refused, failed) leaves its key free: its retry is judged afresh.
///
/// This value holds the keys seen recently, in memory, bounded (oldest answered keys are forgotten first).
/// Keys it does not know are looked up in the store's key index, which holds every key with the answer of
/// the call that took it (`TollgateStore.idempotencyRecord`), and found again there after a restart; a
/// record found there is judged by `replay(stored:asking:)`, the same rule. Keys are one namespace per tenant,
/// whatever method used them.
struct IdempotencyCache {
    enum Entry {
        case inFlight(method: WriteMethod, fingerprint: String)
        case answered(method: WriteMethod, fingerprint: String, answer: JSONValue)
    }

    /// What `claim` found.
    enum Claim: Equatable {
        /// The key is this call's now: finish with `answered` or `release`.
        case claimed
        /// Answered before: the first answer, with `replayed: true`.
        case replay(JSONValue)
    }

    let capacity: Int
    private var entries: [String: Entry] = [:]
    /// Keys in the order they were added, for eviction; `head` is the oldest not yet looked at.
    private var order: [String] = []
    private var head = 0

    init(capacity: Int) { self.capacity = max(1, capacity) }

    var count: Int { entries.count }

    subscript(key: String) -> Entry? { entries[key] }

    /// Claims `call.key` for `call` (a concurrent retry now gets IN_PROGRESS), or answers it from memory.
    /// A key memory does not know is claimed: the caller looks it up in storage (`replay(stored:asking:)`)
    /// unless a transaction that checks the key itself will write it (the ledger's group commit).
    mutating func claim(_ call: KeyedCall) throws(TollgateError) -> Claim {
        switch entries[call.key] {
        case nil:
            set(call.key, .inFlight(method: call.method, fingerprint: call.fingerprint))
            return .claimed
        case .inFlight?:
            throw .inProgress
        case .answered(let method, let fingerprint, let answer)?:
            return .replay(try Self.judge(call, method: method, fingerprint: fingerprint, answer: answer))
        }
    }

    /// The call was answered and its answer stored: remembered for its retries.
    mutating func answered(_ call: KeyedCall, _ answer: JSONValue) {
        set(call.key, .answered(method: call.method, fingerprint: call.fingerprint, answer: answer))
    }

    /// The call stored nothing: its key is free again (unless another call has answered under it meanwhile).
    mutating func release(_ key: String) {
        if case .inFlight? = entries[key] { entries[key] = nil }
    }

    /// The answer to `call`, whose key was found taken in storage: its replay, or a mismatch. Remembered, so
    /// the next retry is answered from memory.
    mutating func replay(stored: IdempotencyRecord, asking call: KeyedCall) throws(TollgateError) -> JSONValue {
        guard let answer = try? JSONCodec.parse(stored.result), let method = Self.method(of: stored) else {
            // Only a hold recorded before keys were one namespace has no stored answer to replay.
            throw .idempotencyMismatch(fields: stored.method == call.method.rawValue ? ["params"] : ["method"])
        }
        set(stored.key, .answered(method: method, fingerprint: stored.params, answer: answer))
        return try Self.judge(call, method: method, fingerprint: stored.params, answer: answer)
    }

    /// The method a stored key was used with. Commits recorded before they had a method of their own were
    /// stored as `meter.verify`; their keys (`commit:rsv_…`) say what they are, so a commit retried across the
    /// upgrade still replays.
    static func method(of stored: IdempotencyRecord) -> WriteMethod? {
        if stored.method == WriteMethod.meterVerify.rawValue,
            stored.key.hasPrefix("commit:\(IDKind.reservation.rawValue)_")
        {
            return .meterCommit
        }
        return WriteMethod(rawValue: stored.method)
    }

    /// The rule itself: the first answer with `replayed: true` if the method and fingerprint are the same.
    static func judge(_ call: KeyedCall, method: WriteMethod, fingerprint: String, answer: JSONValue)
        throws(TollgateError) -> JSONValue
    {
        guard method == call.method else { throw .idempotencyMismatch(fields: ["method"]) }
        guard fingerprint == call.fingerprint else {
            throw .idempotencyMismatch(fields: Fingerprint.differingFields(fingerprint, call.fingerprint))
        }
        guard case .object(var object) = answer else { return answer }
        object["replayed"] = true
        return .object(object)
    }

    private mutating func set(_ key: String, _ entry: Entry) {
        if entries.updateValue(entry, forKey: key) == nil {
            order.append(key)
            evict()
        }
    }

    /// Forgets the oldest answered keys beyond `capacity`; keys in flight are kept (their calls still need
    /// them) and looked at again later.
    private mutating func evict() {
        while entries.count > capacity, head < order.count {
            let oldest = order[head]
            head += 1
            if case .inFlight? = entries[oldest] {
                order.append(oldest)
                continue
            }
            entries[oldest] = nil
        }
        if head > 4096, head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }
}
