/// The domain's one error type. Each case maps to exactly one wire error (`TollgateWire` does the mapping);
/// messages here are safe to show a client: they never carry SQL, stack traces or secrets.
public enum TollgateError: Error, Sendable, Equatable {
    case unauthenticated(String)
    case forbidden(String)
    case notFound(String)
    case validation(field: String, rule: String)
    /// A cap would be crossed; `currency` is the plan currency the amounts are in.
    case budgetExceeded(CapRefusal, currency: String)
    case idempotencyMismatch(fields: [String])
    case inProgress
    case conflict(String)
    case rateLimited(retryAfterMs: Int64)
    case unavailable(String)
}
