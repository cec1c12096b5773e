import TollgateCore
import TollgateJSON
import TollgatePricing

/// A `meter.verify` call (or the charge of a `meter.commit`) as the runtime sees it: the event to rate, where
/// to charge it, and its params as received, for the idempotency rule.
public struct MeterRequest: Sendable {
    /// The tool, quantity and usage to price.
    public var event: RatedEvent
    public var idempotencyKey: String
    /// The method the key is used with: keys are one namespace, so the method is part of what a retry must
    /// repeat. `meter.commit` charges through the same path as `meter.verify`.
    public var method: WriteMethod
    /// The session to charge; the server names one when the caller gave none.
    public var sessionId: String
    /// The caller's outcome of the call (`usage.status`), recorded as given.
    public var status: String?
    /// The request's `params` exactly as received; compared, canonicalised, with a retry's params.
    public var params: JSONValue
    /// The invocation the call was made for (`parentInvocationId`), how many times it was tried before
    /// (`retryCount`), and whether it ran beside its siblings (`parallel`).
    public var parentInvocationId: String?
    public var retryCount: Int64 = 0
    public var parallel = false
    /// The product whose subscription prices the call (an id or a name); nil: the customer's only subscription.
    public var product: String?

    public init(
        event: RatedEvent, idempotencyKey: String, sessionId: String, status: String? = nil, params: JSONValue,
        method: WriteMethod = .meterVerify
    ) {
        self.event = event
        self.idempotencyKey = idempotencyKey
        self.sessionId = sessionId
        self.status = status
        self.params = params
        self.method = method
    }

    /// The call as the idempotency rule sees it, sent by `agentId`.
    func keyed(by agentId: String) -> KeyedCall {
        KeyedCall(key: idempotencyKey, method: method, params: params, principal: agentId)
    }
}
