import Foundation
import TollgateCore

/// A session's totals: what `session.get` shows while it runs and the final billing record once closed.
public struct SessionTotals: Sendable, Hashable {
    public var calls: Int64 = 0
    public var inputTokens: Int64 = 0
    public var outputTokens: Int64 = 0
    public var reasoningTokens: Int64 = 0
    public var durationMs: Int64 = 0
    public var cost = Money.zero
    public var providerCost = Money.zero
    /// Calls whose status was present and not `SUCCESS`.
    public var errors: Int64 = 0
    /// The currency of `cost` and `providerCost`: its charges' (a session's calls are all priced by one
    /// customer's plans). Nil before the first call.
    public var currency: String?

    public init() {}

    /// Adds one recorded charge: a call, or usage that is not one (tokens reported by a `token_consumption` event,
    /// quantity 0), which counts in everything but `calls`.
    public mutating func add(_ charge: ChargeRecord) throws(MoneyError) {
        if charge.quantity > 0 { calls += 1 }
        inputTokens += charge.inputTokens
        outputTokens += charge.outputTokens
        reasoningTokens += charge.reasoningTokens
        durationMs += charge.durationMs
        cost = try cost.adding(charge.cost)
        providerCost = try providerCost.adding(charge.providerCost)
        if CallStatus.isError(charge.status) { errors += 1 }
        currency = charge.currency
    }
}

/// One agent session as stored. Open sessions have no `closedAt`; their totals are summed from their charges.
public struct SessionRecord: Sendable, Hashable {
    public var tenantId: String
    public var id: String
    public var agentId: String
    public var teamId: String
    public var customerId: String
    public var openedAt: Date
    public var closedAt: Date?
    public var outcome: SessionOutcome?
    /// The caller's metadata, as canonical JSON.
    public var metadata: String?
    /// The last call's time, from the charges (nil before the first).
    public var lastCallAt: Date?
    public var totals: SessionTotals

    public init(
        tenantId: String, id: String, agentId: String, teamId: String, customerId: String, openedAt: Date,
        closedAt: Date? = nil, outcome: SessionOutcome? = nil, metadata: String? = nil, lastCallAt: Date? = nil,
        totals: SessionTotals = SessionTotals()
    ) {
        self.tenantId = tenantId
        self.id = id
        self.agentId = agentId
        self.teamId = teamId
        self.customerId = customerId
        self.openedAt = openedAt
        self.closedAt = closedAt
        self.outcome = outcome
        self.metadata = metadata
        self.lastCallAt = lastCallAt
        self.totals = totals
    }
}

/// Which sessions a listing returns.
public enum SessionSelection: Sendable {
    case open, closed, all
    public var includesOpen: Bool { self != .closed }
    public var includesClosed: Bool { self != .open }
}

/// One alert as stored for `alerts.list`: its kind, time and the whole notification body.
public struct AlertRecord: Sendable, Hashable {
    public var tenantId: String
    public var id: String
    public var kind: String
    public var at: Date
    /// The notification's params, as canonical JSON.
    public var body: String
    public init(tenantId: String, id: String, kind: String, at: Date, body: String) {
        self.tenantId = tenantId
        self.id = id
        self.kind = kind
        self.at = at
        self.body = body
    }
}

/// A two-phase hold (`meter.authorize`): an estimate held against every cap on its path until it is
/// committed with the actual usage, released, or expires.
public struct ReservationRecord: Sendable, Hashable {
    public enum State: String, Sendable { case held, committed, released, expired }

    public var tenantId: String
    public var id: String
    public var idempotencyKey: String
    public var path: ChargePath
    public var tool: String
    public var held: Money
    public var currency: String
    public var createdAt: Date
    public var expiresAt: Date
    public var state: State
    /// The charge a commit recorded.
    public var receiptId: String?
    /// The held call's place in its agent's task (`meter.authorize`'s `parentInvocationId`, `retryCount`,
    /// `parallel`), given to the charge its commit records.
    public var parentInvocationId: String?
    public var retryCount: Int64 = 0
    public var parallel = false
    /// The product whose subscription prices its commit (nil: the customer's only subscription, or none).
    public var productId: String?

    public init(
        tenantId: String, id: String, idempotencyKey: String, path: ChargePath, tool: String, held: Money,
        currency: String, createdAt: Date, expiresAt: Date, state: State = .held, receiptId: String? = nil
    ) {
        self.tenantId = tenantId
        self.id = id
        self.idempotencyKey = idempotencyKey
        self.path = path
        self.tool = tool
        self.held = held
        self.currency = currency
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.state = state
        self.receiptId = receiptId
    }
}
