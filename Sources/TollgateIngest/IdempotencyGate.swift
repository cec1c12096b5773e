import TollgateJSON

/// The idempotency gate: an event id is taken once per tenant, for as long as events can arrive (the timestamp
/// gate's window). The same id again with the same body is a `duplicate` — answered, never counted twice; with
/// another body it is refused (`IDEMPOTENCY_MISMATCH`): two different events under one id is a sender's bug that
/// must not be hidden.
///
/// The id is claimed in the same transaction as the event's usage record: a write that fails leaves the id free,
/// so a retried event is counted once — never zero times.
public enum IdempotencyGate {
    public enum Verdict: Sendable, Hashable {
        /// Never seen: record it.
        case new
        /// Seen with this very body: answer as before, record nothing.
        case duplicate
        case mismatch(EventRejection)
    }

    /// What an id is compared by: the event as sent, in canonical form (key order and spacing do not count), and
    /// who sent it — the same id from another agent of the tenant is a mismatch, never someone else's record.
    /// It is the fingerprint of every keyed call (`meter.verify`'s included): event ids and idempotency keys are
    /// one namespace per tenant.
    public static func fingerprint(_ raw: JSONValue, principal: String) -> String {
        JSONCodec.string(["agentId": .string(principal), "params": raw])
    }

    /// - Parameter stored: the fingerprint recorded under the event's id, if the id was taken already (by an
    ///   earlier batch, or earlier in this one).
    public static func check(_ fingerprint: String, stored: String?) -> Verdict {
        guard let stored else { return .new }
        if stored == fingerprint { return .duplicate }
        return .mismatch(
            EventRejection(
                "IDEMPOTENCY_MISMATCH", field: "eventId", "this eventId was already used for an event with another body"
            ))
    }
}
