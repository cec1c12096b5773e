import Foundation
import TollgateCore
import TollgateJSON
import TollgateWire

/// When a typed call retries: a failure the server marks retryable (`UNAVAILABLE`, `IN_PROGRESS`) is tried again,
/// with the same idempotency key, so that a retry can never be charged twice; `RATE_LIMITED` waits the
/// `retryAfterMs` the server names. Retries happen on this connection; one that is closed is not reopened.
public struct RetryPolicy: Sendable {
    /// Attempts in all, the first included.
    public var attempts: Int
    /// The wait before the first retry, doubled before each next one up to `backoffMsMax`.
    public var backoffMs: Int
    public var backoffMsMax: Int

    public init(attempts: Int = 4, backoffMs: Int = 50, backoffMsMax: Int = 2000) {
        self.attempts = max(1, attempts)
        self.backoffMs = max(0, backoffMs)
        self.backoffMsMax = max(backoffMs, backoffMsMax)
    }

    public static let `default` = RetryPolicy()
    /// One attempt: failures are thrown as they come.
    public static let never = RetryPolicy(attempts: 1)
}

/// A call's usage (or, for `authorize`, its estimate); `nil` fields are not sent.
public struct Usage: Sendable, Equatable {
    public var inputTokens: Int64?
    public var outputTokens: Int64?
    public var reasoningTokens: Int64?
    public var durationMs: Int64?
    /// `SUCCESS`, or the call's failure (`FAILED`, `TIMEOUT`, …): counted in the session's errors.
    public var status: String?
    public var providerCost: Money?
    /// The model the call used (1 to 128 bytes), recorded with the charge.
    public var model: String?

    public init(
        inputTokens: Int64? = nil, outputTokens: Int64? = nil, reasoningTokens: Int64? = nil,
        durationMs: Int64? = nil, status: String? = nil, providerCost: Money? = nil, model: String? = nil
    ) {
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.reasoningTokens = reasoningTokens
        self.durationMs = durationMs
        self.status = status
        self.providerCost = providerCost
        self.model = model
    }

    public var json: JSONValue {
        var fields: [String: JSONValue] = [:]
        if let inputTokens { fields["inputTokens"] = .integer(inputTokens) }
        if let outputTokens { fields["outputTokens"] = .integer(outputTokens) }
        if let reasoningTokens { fields["reasoningTokens"] = .integer(reasoningTokens) }
        if let durationMs { fields["durationMs"] = .integer(durationMs) }
        if let status { fields["status"] = .string(status) }
        if let providerCost { fields["providerCost"] = .string(providerCost.decimalString) }
        if let model { fields["model"] = .string(model) }
        return .object(fields)
    }
}

/// The answer to `meter.verify` or `meter.commit`.
public struct Receipt: Sendable, Equatable {
    public var receiptId: String
    public var cost: Money
    public var currency: String
    public var sessionId: String
    /// What is left under the tightest cap of each capped scope on the call's path.
    public var remaining: [String: Money]
    /// True when this answers a retry of a call answered before (nothing was charged again).
    public var replayed: Bool
    /// For a commit: the reservation it settled.
    public var reservationId: String?
    /// The answer as the server sent it.
    public var json: JSONValue

    init(_ json: JSONValue) throws {
        self.json = json
        receiptId = try Self.string(json, "receiptId")
        cost = try Money(decimal: try Self.string(json, "cost"))
        currency = try Self.string(json, "currency")
        sessionId = try Self.string(json, "sessionId")
        var remaining: [String: Money] = [:]
        for (scope, value) in json["remaining"]?.objectValue ?? [:] {
            guard let text = value.stringValue else { throw TollgateClientError.unexpectedAnswer("remaining.\(scope)") }
            remaining[scope] = try Money(decimal: text)
        }
        self.remaining = remaining
        replayed = json["replayed"] == true
        reservationId = json["reservationId"]?.stringValue
    }

    static func string(_ json: JSONValue, _ field: String) throws -> String {
        guard let value = json[field]?.stringValue else { throw TollgateClientError.unexpectedAnswer(field) }
        return value
    }
}

/// The answer to `meter.authorize`: the hold made.
public struct Hold: Sendable, Equatable {
    public var reservationId: String
    public var held: Money
    public var currency: String
    public var sessionId: String
    public var expiresAt: String
    public var replayed: Bool
    public var json: JSONValue

    init(_ json: JSONValue) throws {
        self.json = json
        reservationId = try Receipt.string(json, "reservationId")
        held = try Money(decimal: try Receipt.string(json, "held"))
        currency = try Receipt.string(json, "currency")
        sessionId = try Receipt.string(json, "sessionId")
        expiresAt = try Receipt.string(json, "expiresAt")
        replayed = json["replayed"] == true
    }
}

/// A session as `session.open`, `session.get` and `session.close` answer.
public struct SessionInfo: Sendable, Equatable {
    public var sessionId: String
    /// `CREATED`, `ACTIVE`, `IDLE` or `CLOSED`.
    public var state: String
    public var calls: Int64
    public var cost: Money
    public var currency: String?
    public var outcome: String?
    public var replayed: Bool
    public var json: JSONValue

    init(_ json: JSONValue) throws {
        self.json = json
        sessionId = try Receipt.string(json, "sessionId")
        state = try Receipt.string(json, "state")
        calls = json["calls"]?.int64Value ?? 0
        cost = try Money(decimal: try Receipt.string(json, "cost"))
        currency = json["currency"]?.stringValue
        outcome = json["outcome"]?.stringValue
        replayed = json["replayed"] == true
    }
}

/// The answer to `meter.quote`: each tool's price, in one currency.
public struct PriceList: Sendable, Equatable {
    public var currency: String
    public var prices: [String: Money]
    public var json: JSONValue

    init(_ json: JSONValue) throws {
        currency = try Receipt.string(json, "currency")
        var prices: [String: Money] = [:]
        for entry in json["prices"]?.arrayValue ?? [] {
            let tool = try Receipt.string(entry, "tool")
            prices[tool] = try Money(decimal: try Receipt.string(entry, "amount"))
        }
        self.prices = prices
        self.json = json
    }
}

extension TollgateConnection {
    /// `meter.verify`: may this call run, at what cost? Charged once, whatever the retries: every attempt
    /// carries `key`.
    ///
    /// `source` says who is calling (`sdk`, `proxy`; the server assumes `rpc`), kept with the call as an event.
    public func verify(
        tool: String, key: String, sessionId: String? = nil, quantity: Int64 = 1, usage: Usage? = nil,
        source: String? = nil, product: String? = nil, retry: RetryPolicy = .default
    ) async throws -> Receipt {
        var params: [String: JSONValue] = [
            "tool": .string(tool), "idempotencyKey": .string(key), "quantity": .integer(quantity),
        ]
        if let product { params["product"] = .string(product) }
        if let sessionId { params["sessionId"] = .string(sessionId) }
        if let source { params["source"] = .string(source) }
        if let usage { params["usage"] = usage.json }
        return try Receipt(try await call(.meterVerify, .object(params), retry: retry))
    }

    /// `meter.authorize`: holds the estimate's price until `commit`, `release` or expiry.
    /// Without an estimate (and a quantity of 1), the server holds the product catalog's estimate for the tool.
    public func authorize(
        tool: String, key: String, sessionId: String? = nil, quantity: Int64 = 1, estimate: Usage? = nil,
        ttlMs: Int64? = nil, source: String? = nil, product: String? = nil, retry: RetryPolicy = .default
    ) async throws -> Hold {
        var params: [String: JSONValue] = ["tool": .string(tool), "idempotencyKey": .string(key)]
        if quantity != 1 || estimate != nil { params["quantity"] = .integer(quantity) }
        if let product { params["product"] = .string(product) }
        if let sessionId { params["sessionId"] = .string(sessionId) }
        if let source { params["source"] = .string(source) }
        if let estimate { params["estimate"] = estimate.json }
        if let ttlMs { params["ttlMs"] = .integer(ttlMs) }
        return try Hold(try await call(.meterAuthorize, .object(params), retry: retry))
    }

    /// `meter.commit`: charges the actual usage in place of the hold (keyed by the reservation itself).
    public func commit(
        reservationId: String, quantity: Int64 = 1, usage: Usage? = nil, retry: RetryPolicy = .default
    ) async throws -> Receipt {
        var params: [String: JSONValue] = ["reservationId": .string(reservationId), "quantity": .integer(quantity)]
        if let usage { params["usage"] = usage.json }
        return try Receipt(try await call(.meterCommit, .object(params), retry: retry))
    }

    /// `meter.release`: gives the hold back. The state the hold ended in (`released` or `expired`).
    @discardableResult
    public func release(reservationId: String, key: String? = nil, retry: RetryPolicy = .default) async throws
        -> String
    {
        var params: [String: JSONValue] = ["reservationId": .string(reservationId)]
        if let key { params["idempotencyKey"] = .string(key) }
        return try Receipt.string(try await call(.meterRelease, .object(params), retry: retry), "state")
    }

    /// `meter.quote`: what each tool would cost this agent now, for one call of `quantity` with `usage`
    /// (recording and holding nothing).
    public func quote(
        tools: [String], sessionId: String? = nil, quantity: Int64 = 1, usage: Usage? = nil, product: String? = nil,
        retry: RetryPolicy = .default
    ) async throws -> PriceList {
        var params: [String: JSONValue] = ["tools": .array(tools.map { .string($0) }), "quantity": .integer(quantity)]
        if let product { params["product"] = .string(product) }
        if let sessionId { params["sessionId"] = .string(sessionId) }
        if let usage { params["usage"] = usage.json }
        return try PriceList(try await call(.meterQuote, .object(params), retry: retry))
    }

    /// `session.open`: opens the session `id` (or one the server names).
    public func openSession(
        _ id: String? = nil, metadata: JSONValue? = nil, key: String? = nil, retry: RetryPolicy = .default
    ) async throws -> SessionInfo {
        var params: [String: JSONValue] = [:]
        if let id { params["sessionId"] = .string(id) }
        if let metadata { params["metadata"] = metadata }
        if let key { params["idempotencyKey"] = .string(key) }
        return try SessionInfo(try await call(.sessionOpen, .object(params), retry: retry))
    }

    /// `session.get`.
    public func session(_ id: String, retry: RetryPolicy = .default) async throws -> SessionInfo {
        try SessionInfo(try await call(.sessionGet, ["sessionId": .string(id)], retry: retry))
    }

    /// `session.close`: closes the session and answers its final billing record.
    public func closeSession(
        _ id: String, outcome: String = "COMPLETED", key: String? = nil, retry: RetryPolicy = .default
    ) async throws -> SessionInfo {
        var params: [String: JSONValue] = ["sessionId": .string(id), "outcome": .string(outcome)]
        if let key { params["idempotencyKey"] = .string(key) }
        return try SessionInfo(try await call(.sessionClose, .object(params), retry: retry))
    }

    /// `call` under `retry`: the same method and params (and so the same key) each attempt.
    public func call(_ method: RPCMethod, _ params: JSONValue, retry: RetryPolicy) async throws -> JSONValue {
        var waitMs = retry.backoffMs
        for attempt in 1...retry.attempts {
            do {
                return try await call(method.rawValue, params)
            } catch let error as RPCError where attempt < retry.attempts && error.retryable {
                let serverWait = error.data?["retryAfterMs"]?.int64Value.map(Int.init)
                try await Task.sleep(for: .milliseconds(serverWait ?? waitMs))
                waitMs = min(waitMs * 2, retry.backoffMsMax)
            }
        }
        preconditionFailure("the last attempt returns or throws")
    }
}

extension RPCError {
    /// Whether the server says trying again may succeed (`data.retryable`).
    public var retryable: Bool { data?["retryable"] == true }
}
