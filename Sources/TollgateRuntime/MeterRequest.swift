import TollgateCore
import TollgatePricing

/// A `meter.verify` call as the runtime sees it: the event to rate, where to charge it, and the canonical
/// form of its params for idempotency comparison.
public struct MeterRequest: Sendable {
    /// The tool, quantity and usage to price.
    public var event: RatedEvent
    public var idempotencyKey: String
    /// The wire method the key was used with: keys are one namespace, so the method is part of what a retry
    /// must repeat. `meter.commit` charges through the same path as `meter.verify`.
    public var method: String
    /// The session to charge; the server names one when the caller gave none.
    public var sessionId: String
    /// The caller's outcome of the call (`usage.status`), recorded as given.
    public var status: String?
    /// The request's `params` exactly as received; compared, canonicalised, with a retry's params.
    public var params: JSONValue

    public init(
        event: RatedEvent, idempotencyKey: String, sessionId: String, status: String? = nil, params: JSONValue,
        method: String = "meter.verify"
    ) {
        self.event = event
        self.idempotencyKey = idempotencyKey
        self.sessionId = sessionId
        self.status = status
        self.params = params
        self.method = method
    }
}
