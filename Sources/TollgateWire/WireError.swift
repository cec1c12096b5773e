import Foundation
import TollgateCore
import TollgateJSON

/// A JSON-RPC error as it goes on the wire: `{code, message, data}`. Every failure reaches the client
/// through `WireError(translating:)`, the one place where internal errors become wire errors; nothing
/// internal (SQL, stack traces, file paths) is ever put in one.
public struct WireError: Error, Sendable, Equatable {
    public var code: Int
    public var message: String
    public var data: JSONValue?

    public init(code: Int, message: String, data: JSONValue? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    public var reason: String? { data?["reason"]?.stringValue }

    static func app(
        _ code: Int, _ message: String, _ reason: String, retryable: Bool,
        _ extra: [String: JSONValue] = [:]
    ) -> WireError {
        var data = extra
        data["reason"] = .string(reason)
        data["retryable"] = .bool(retryable)
        return WireError(code: code, message: message, data: .object(data))
    }

    public static func parseError(_ detail: String) -> WireError {
        WireError(code: -32700, message: "parse error: \(detail)")
    }

    public static func invalidRequest(_ detail: String) -> WireError {
        WireError(code: -32600, message: "invalid request: \(detail)")
    }

    public static func frame(_ violation: FrameViolation) -> WireError {
        var data: [String: JSONValue] = ["reason": .string(violation.reason), "retryable": false]
        if case .tooLarge(let announced, let maximum) = violation {
            data["announcedBytes"] = .integer(Int64(announced))
            data["frameBytesMax"] = .integer(Int64(maximum))
        }
        let message = violation == .empty ? "frame length is zero" : "frame larger than frameBytesMax"
        return WireError(code: -32600, message: message, data: .object(data))
    }

    /// Echoes at most `echoBytesMax` bytes of the name: an error never repeats unbounded input.
    public static func methodNotFound(_ method: String) -> WireError {
        WireError(code: -32601, message: "method not found: \(echo(method))")
    }

    /// The most of a caller's own text an error message repeats.
    public static let echoBytesMax = 64

    /// `text`, cut to at most `echoBytesMax` bytes (on a character boundary) and marked `…` when cut.
    static func echo(_ text: String) -> String {
        guard text.utf8.count > echoBytesMax else { return text }
        var cut = ""
        for character in text {
            guard cut.utf8.count + character.utf8.count <= echoBytesMax else { break }
            cut.append(character)
        }
        return cut + "…"
    }

    /// An answer would be larger than the frame limit (a batch of large results, say): it is replaced by this,
    /// under the same id. Nothing about the request's outcome is lost for a write: its retry with the same key
    /// replays the answer alone.
    public static func answerTooLarge(frameBytesMax: Int) -> WireError {
        app(
            -32603, "the answer is larger than frameBytesMax (\(frameBytesMax) bytes); ask for less at a time",
            "ANSWER_TOO_LARGE", retryable: false, ["frameBytesMax": .integer(Int64(frameBytesMax))])
    }

    /// A parameter is missing or has the wrong JSON type.
    public static func invalidParams(field: String, expected: String) -> WireError {
        WireError(
            code: -32602, message: "invalid params: \(field) must be \(expected)",
            data: ["field": .string(field), "expected": .string(expected)])
    }

    public static let internalError = WireError(code: -32603, message: "internal error")

    public static func unavailable(_ detail: String) -> WireError {
        app(-32050, detail, "UNAVAILABLE", retryable: true)
    }

    public static func batchTooLarge(count: Int, batchMax: Int) -> WireError {
        app(
            -32600, "batch of \(count) requests exceeds batchMax \(batchMax)", "BATCH_TOO_LARGE", retryable: false,
            ["batchMax": .integer(Int64(batchMax))])
    }

    /// The one translation from domain errors to wire errors. Anything unknown becomes `-32603` with no
    /// detail; the caller logs the original.
    public init(translating error: any Error) {
        if let wire = error as? WireError {
            self = wire
            return
        }
        guard let domain = error as? TollgateError else {
            self = .internalError
            return
        }
        switch domain {
        case .unauthenticated(let detail):
            self = .app(-32001, detail, "UNAUTHENTICATED", retryable: false)
        case .forbidden(let detail):
            self = .app(-32002, detail, "FORBIDDEN", retryable: false)
        case .notFound(let detail):
            self = .app(-32003, detail, "NOT_FOUND", retryable: false)
        case .validation(let field, let rule):
            self = .app(
                -32020, "validation failed: \(field) must be \(rule)", "VALIDATION_FAILED", retryable: false,
                ["field": .string(field), "rule": .string(rule)])
        case .budgetExceeded(let refusal, let currency):
            self = .app(
                -32010, "budget exceeded", "BUDGET_EXCEEDED", retryable: false, Self.budgetData(refusal, currency))
        case .idempotencyMismatch(let fields):
            self = .app(
                -32011, "idempotency key was used with different params", "IDEMPOTENCY_MISMATCH",
                retryable: false, ["fields": .array(fields.map(JSONValue.string))])
        case .inProgress:
            self = .app(-32012, "a request with this idempotency key is in progress", "IN_PROGRESS", retryable: true)
        case .conflict(let detail):
            self = .app(-32030, detail, "CONFLICT", retryable: false)
        case .rateLimited(let retryAfterMs):
            self = .app(
                -32029, "rate limited", "RATE_LIMITED", retryable: true, ["retryAfterMs": .integer(retryAfterMs)])
        case .unavailable(let detail):
            self = .unavailable(detail)
        }
    }

    static func budgetData(_ refusal: CapRefusal, _ currency: String) -> [String: JSONValue] {
        if refusal.credit { return creditData(refusal, currency) }
        let cap = refusal.cap
        let left = Money(nanos: max(0, cap.limit.nanos - refusal.spent.nanos))
        var hint =
            "\(cap.target.scope.rawValue) cap of \(cap.limit) \(currency) (\(cap.period.rawValue)) has \(left) "
            + "\(currency) left; this call costs \(refusal.requested) \(currency)."
        var data: [String: JSONValue] = [
            "scope": .string(cap.target.scope.rawValue), "scopeId": .string(cap.target.id),
            "limit": .string(cap.limit.decimalString), "spent": .string(refusal.spent.decimalString),
            "requested": .string(refusal.requested.decimalString), "remaining": .string(left.decimalString),
            "currency": .string(currency), "period": .string(cap.period.rawValue), "capId": .string(cap.id),
        ]
        if let resetsAt = refusal.resetsAt {
            data["resetsAt"] = .string(Timestamp.format(resetsAt))
            hint += " It resets at \(Timestamp.format(resetsAt))."
        } else {
            hint += " It never resets: ask an operator to raise it."
        }
        data["hint"] = .string(hint)
        return data
    }

    /// A customer that blocks at zero credit: `limit` is what its credit has left, `spent` what its calls in flight
    /// and holds take of that.
    static func creditData(_ refusal: CapRefusal, _ currency: String) -> [String: JSONValue] {
        let balance = refusal.cap.limit
        let left = Money(nanos: max(0, balance.nanos - refusal.spent.nanos))
        let hint =
            "customer \(refusal.cap.target.id) pays from credit and has \(left) \(currency) of it left"
            + (refusal.spent > .zero ? " (\(refusal.spent) \(currency) more is held by calls in flight)" : "")
            + "; this call costs \(refusal.requested) \(currency). Calls go through again once credit is granted."
        return [
            "scope": "credit", "scopeId": .string(refusal.cap.target.id), "limit": .string(balance.decimalString),
            "spent": .string(refusal.spent.decimalString), "requested": .string(refusal.requested.decimalString),
            "remaining": .string(left.decimalString), "currency": .string(currency), "hint": .string(hint),
        ]
    }
}
