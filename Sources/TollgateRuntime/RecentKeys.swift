import TollgateCore

/// A small bounded map of recent idempotency keys, evicting the oldest first. Older keys are still found in
/// storage; this only spares a look-up for retries that come soon after the first call.
///
/// Keys are one namespace per tenant, whatever method used them: each entry remembers the method, so a key
/// used by `meter.verify` and then by `meter.authorize` is a mismatch, never a second write.
struct RecentKeys {
    enum State {
        case inFlight(method: String, fingerprint: String)
        case done(method: String, fingerprint: String, result: JSONValue)
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
            if case .inFlight? = states[oldest] {
                order.append(oldest)
                continue
            }
            states[oldest] = nil
        }
        if head > 4096, head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }
}
