import TollgateCore
import TollgatePricing

/// A `meter.verify` call as the runtime sees it: the event to rate, where to charge it, and the canonical
/// form of its params for idempotency comparison.
public struct MeterRequest: Sendable {
    /// The tool, quantity and usage to price.
    public var event: RatedEvent
    public var idempotencyKey: String
    /// The session to charge; the server names one when the caller gave none.
    public var sessionId: String
    /// The caller's outcome of the call (`usage.status`), recorded as given.
    public var status: String?
    /// The request's `params` exactly as received; compared, canonicalised, with a retry's params.
    public var params: JSONValue

    public init(event: RatedEvent, idempotencyKey: String, sessionId: String, status: String? = nil, params: JSONValue) {
        self.event = event; self.idempotencyKey = idempotencyKey; self.sessionId = sessionId; self.status = status
        self.params = params
    }
}

/// What idempotency compares: the params and who sent them. A key reused by another agent of the same
/// tenant is a mismatch (field `agentId`), never a replay of someone else's receipt.
enum Fingerprint {
    static func make(params: JSONValue, agentId: String) -> String {
        JSONCodec.string(["agentId": .string(agentId), "params": params])
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

/// A small bounded map of recent idempotency keys, evicting the oldest first. Older keys are still found in
/// storage; this only spares a look-up for retries that come soon after the first call.
struct RecentKeys {
    enum State {
        case inFlight(fingerprint: String)
        case done(fingerprint: String, result: JSONValue)
    }

    let capacity: Int
    private var states: [String: State] = [:]
    private var order: [String] = []
    private var head = 0

    init(capacity: Int) { self.capacity = max(1, capacity) }

    subscript(key: String) -> State? { states[key] }

    mutating func set(_ key: String, _ state: State) {
        if states.updateValue(state, forKey: key) == nil {
            order.append(key)
            evict()
        }
    }

    mutating func remove(_ key: String) { states[key] = nil }

    mutating func removeIfInFlight(_ key: String) {
        if case .inFlight? = states[key] { states[key] = nil }
    }

    private mutating func evict() {
        while states.count > capacity, head < order.count {
            let oldest = order[head]
            head += 1
            if case .inFlight? = states[oldest] { order.append(oldest); continue }
            states[oldest] = nil
        }
        if head > 4096, head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }
}
