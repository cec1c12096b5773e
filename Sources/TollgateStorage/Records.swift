import Foundation
import TollgateCore
import TollgateJSON

/// A tenant and the hash of its operator token.
public struct TenantRecord: Sendable, Hashable {
    public var id: String
    public var name: String
    public var createdAt: Date
    public init(id: String, name: String, createdAt: Date) {
        self.id = id
        self.name = name
        self.createdAt = createdAt
    }
}

/// An agent's client secrets, as hashes: the current one and, for a while after `credentials.rotate` with an
/// overlap, the one before it.
public struct ClientSecrets: Sendable, Hashable {
    public var hash: String
    public var previousHash: String?
    /// Until when `previousHash` still works.
    public var previousUntil: Date?
    public init(hash: String, previousHash: String? = nil, previousUntil: Date? = nil) {
        self.hash = hash
        self.previousHash = previousHash
        self.previousUntil = previousUntil
    }
}

/// One version of a plan, as stored. The document is kept as the JSON text the operator's plan was validated
/// from; the runtime re-validates it into a `Plan` when it loads (storage does not know pricing).
public struct PlanRecord: Sendable, Hashable {
    public var tenantId: String
    public var planId: String
    public var name: String
    public var version: Int
    public var document: String
    public var createdAt: Date
    public init(tenantId: String, planId: String, name: String, version: Int, document: String, createdAt: Date) {
        self.tenantId = tenantId
        self.planId = planId
        self.name = name
        self.version = version
        self.document = document
        self.createdAt = createdAt
    }
}

/// A customer's subscription to one version of a plan.
public struct SubscriptionRecord: Sendable, Hashable {
    public var id: String
    public var tenantId: String
    public var customerId: String
    public var planId: String
    public var version: Int
    public var startsAt: Date
    /// How often its billing periods turn over, in its customer's time zone (`BillingCalendar`).
    public var period: BillingCalendar.Cadence
    /// The product it is a subscription to; nil for a subscription to the tenant's plan without a product.
    public var productId: String?
    public init(
        id: String, tenantId: String, customerId: String, planId: String, version: Int, startsAt: Date,
        period: BillingCalendar.Cadence = .month(anchorDay: 1), productId: String? = nil
    ) {
        self.productId = productId
        self.id = id
        self.tenantId = tenantId
        self.customerId = customerId
        self.planId = planId
        self.version = version
        self.startsAt = startsAt
        self.period = period
    }
}

/// A change of a subscription's plan from `effectiveAt` on (`subscriptions.swap`). The plan in force for a
/// call is the latest swap effective at or before the call's millisecond, else the subscription's own.
public struct PlanSwapRecord: Sendable, Hashable {
    public var id: String
    public var tenantId: String
    public var subscriptionId: String
    public var planId: String
    public var version: Int
    public var effectiveAt: Date
    public init(id: String, tenantId: String, subscriptionId: String, planId: String, version: Int, effectiveAt: Date) {
        self.id = id
        self.tenantId = tenantId
        self.subscriptionId = subscriptionId
        self.planId = planId
        self.version = version
        self.effectiveAt = effectiveAt
    }
}

/// One priced, accepted call: the row every later total, summary and invoice is derived from.
public struct ChargeRecord: Sendable, Hashable {
    public var receiptId: String
    public var tenantId: String
    public var customerId: String
    public var teamId: String
    public var agentId: String
    public var credentialId: String
    public var sessionId: String
    public var subscriptionId: String
    public var planId: String
    public var planVersion: Int
    public var tool: String
    public var quantity: Int64
    public var inputTokens: Int64
    public var outputTokens: Int64
    public var reasoningTokens: Int64
    public var durationMs: Int64
    public var status: String?
    public var cost: Money
    public var providerCost: Money
    /// The model the call reported using (`usage.model`), if it did.
    public var model: String?
    /// The call's place in an agent's task: its own invocation id (a `meter.verify`'s key), the invocation it
    /// was made for, how many times it had been tried before, and whether it ran beside its siblings.
    public var invocationId: String
    public var parentInvocationId: String?
    public var retryCount: Int64 = 0
    public var parallel: Bool = false
    public var currency: String
    public var idempotencyKey: String
    public var at: Date
    /// When its event occurred, if that was before it was charged (a batch's late event); nil: when charged.
    public var occurredAt: Date?

    public init(
        receiptId: String, tenantId: String, path: ChargePath, subscriptionId: String, planId: String,
        planVersion: Int, tool: String, quantity: Int64, inputTokens: Int64 = 0, outputTokens: Int64 = 0,
        reasoningTokens: Int64 = 0, durationMs: Int64 = 0, status: String? = nil, cost: Money,
        providerCost: Money = .zero, model: String? = nil, currency: String, idempotencyKey: String, at: Date
    ) {
        self.receiptId = receiptId
        self.tenantId = tenantId
        self.customerId = path.customerId
        self.teamId = path.teamId
        self.agentId = path.agentId
        self.credentialId = path.credentialId
        self.sessionId = path.sessionId
        self.subscriptionId = subscriptionId
        self.planId = planId
        self.planVersion = planVersion
        self.tool = tool
        self.quantity = quantity
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.reasoningTokens = reasoningTokens
        self.durationMs = durationMs
        self.providerCost = providerCost
        self.model = model
        self.invocationId = idempotencyKey
        self.status = status
        self.cost = cost
        self.currency = currency
        self.idempotencyKey = idempotencyKey
        self.at = at
    }

    public var path: ChargePath {
        ChargePath(
            customerId: customerId, teamId: teamId, agentId: agentId, sessionId: sessionId,
            credentialId: credentialId)
    }
}

/// The first answer to an idempotent write, kept so that a retry with the same key gets it back unchanged.
public struct IdempotencyRecord: Sendable, Hashable {
    public var tenantId: String
    public var key: String
    public var method: String
    /// The request's params as canonical JSON (sorted keys), to detect a key reused with other params.
    public var params: String
    /// The result as JSON, with any secret removed before it was stored.
    public var result: String
    public var createdAt: Date
    public init(tenantId: String, key: String, method: String, params: String, result: String, createdAt: Date) {
        self.tenantId = tenantId
        self.key = key
        self.method = method
        self.params = params
        self.result = result
        self.createdAt = createdAt
    }
}

/// What the group-commit writer hands storage: everything one accepted call writes, in one transaction.
public struct LedgerEntry: Sendable, Hashable {
    public var charge: ChargeRecord
    public var idempotency: IdempotencyRecord
    /// Where the charge's price stands among the calls priced before it, on plans whose prices depend on
    /// them; nil when its price depends on no other call. See `PricingStream`.
    public var pricing: PricingTicket?
    /// The hold this charge commits (`meter.commit`): marked committed, with the charge's receipt, in the same
    /// transaction as the charge — one write, and never a charge whose hold still reads as held.
    public var settles: String?

    public init(
        charge: ChargeRecord, idempotency: IdempotencyRecord, pricing: PricingTicket? = nil, settles: String? = nil
    ) {
        self.charge = charge
        self.idempotency = idempotency
        self.pricing = pricing
        self.settles = settles
    }
}

/// Everything a tenant actor caches, loaded in one call when it starts.
public struct TenantSnapshot: Sendable {
    public var tenant: TenantRecord
    public var customers: [Customer] = []
    public var teams: [Team] = []
    public var agents: [Agent] = []
    public var credentials: [Credential] = []
    public var operatorCredentials: [OperatorCredential] = []
    public var caps: [Cap] = []
    public var plans: [PlanRecord] = []
    public var subscriptions: [SubscriptionRecord] = []
    public var planSwaps: [PlanSwapRecord] = []
    public var creditGrants: [CreditGrant] = []
    public var discounts: [Discount] = []
    public var products: [Product] = []
    public init(tenant: TenantRecord) { self.tenant = tenant }
}

/// Committed spend of one scope, as loaded at start-up.
public struct SpendRow: Sendable, Hashable {
    public var target: ScopeRef
    /// The customer the scope belongs to, whose windows `month` and `day` were summed in.
    public var customerId: String
    public var lifetime: Money
    /// Spend since the start of the customer's current billing period and local day (`SpendWindows`).
    public var month: Money
    public var day: Money
    public init(target: ScopeRef, customerId: String, lifetime: Money, month: Money, day: Money) {
        self.target = target
        self.customerId = customerId
        self.lifetime = lifetime
        self.month = month
        self.day = day
    }
}

/// The windows spend is summed in at start-up: each customer's billing period and local day at that moment.
public struct SpendWindows: Sendable, Hashable {
    public var byCustomer: [String: CapWindows]
    /// For a customer missing from `byCustomer`.
    public var fallback: CapWindows

    public init(byCustomer: [String: CapWindows], fallback: CapWindows) {
        self.byCustomer = byCustomer
        self.fallback = fallback
    }

    public func of(_ customerId: String) -> CapWindows { byCustomer[customerId] ?? fallback }
}

/// The dimensions `usage.summary` can group by.
public enum UsageGroup: String, Sendable, Hashable, CaseIterable {
    /// `model` is the model the call reported (`usage.model`); calls that reported none group under "".
    /// `task` is the root of the call's invocation graph: the cost of one agent task, its fan-out and its
    /// retries, is one row.
    case tool, agent, session, team, day, model, task
    /// The customer charged (for `reports.margin` per customer, and `usage.summary` across customers).
    case customer
    /// The product of the subscription that priced the call ("" for a subscription to no product).
    case product
    /// The credential that made the call: a delegated sub-agent's own (`credentials.delegate`).
    case credential
}

public struct UsageFilter: Sendable, Hashable {
    public var customerId: String?
    public var teamId: String?
    public var agentId: String?
    public var sessionId: String?
    /// Inclusive lower and exclusive upper bound on the charge time.
    public var from: Date?
    public var to: Date?
    /// Charges priced by a subscription to this product.
    public var productId: String?
    public init(
        customerId: String? = nil, teamId: String? = nil, agentId: String? = nil, sessionId: String? = nil,
        from: Date? = nil, to: Date? = nil, productId: String? = nil
    ) {
        self.productId = productId
        self.customerId = customerId
        self.teamId = teamId
        self.agentId = agentId
        self.sessionId = sessionId
        self.from = from
        self.to = to
    }
}

public struct UsageRow: Sendable, Hashable {
    /// The group's key values, in the order of `groupBy`. A `day` key is `YYYY-MM-DD`.
    public var keys: [String]
    public var currency: String
    public var calls: Int64
    public var quantity: Int64
    public var inputTokens: Int64
    public var outputTokens: Int64
    public var cost: Money
    public var providerCost: Money
    /// Calls that were retries (`retryCount` above 0): a retry storm shows here, not as new work.
    public var retries: Int64
    public init(
        keys: [String], currency: String, calls: Int64, quantity: Int64, inputTokens: Int64,
        outputTokens: Int64, cost: Money, providerCost: Money, retries: Int64 = 0
    ) {
        self.retries = retries
        self.keys = keys
        self.currency = currency
        self.calls = calls
        self.quantity = quantity
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.cost = cost
        self.providerCost = providerCost
    }
}

/// What rating needs of one recorded charge, to rebuild a subscription's running totals after a restart.
public struct RatingRow: Sendable, Hashable {
    public var planId: String
    public var planVersion: Int
    public var tool: String
    public var quantity: Int64
    public var inputTokens: Int64
    public var outputTokens: Int64
    public var reasoningTokens: Int64
    public var durationMs: Int64
    public var status: String?
    public var providerCost: Money
    public var agentId: String
    public var sessionId: String
    public var cost: Money
    public var at: Date

    public init(
        planId: String, planVersion: Int, tool: String, quantity: Int64, inputTokens: Int64, outputTokens: Int64,
        reasoningTokens: Int64, durationMs: Int64, status: String?, providerCost: Money, agentId: String,
        sessionId: String, cost: Money, at: Date
    ) {
        self.planId = planId
        self.planVersion = planVersion
        self.tool = tool
        self.quantity = quantity
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.reasoningTokens = reasoningTokens
        self.durationMs = durationMs
        self.status = status
        self.providerCost = providerCost
        self.agentId = agentId
        self.sessionId = sessionId
        self.cost = cost
        self.at = at
    }

    public init(_ charge: ChargeRecord) {
        self.init(
            planId: charge.planId, planVersion: charge.planVersion, tool: charge.tool, quantity: charge.quantity,
            inputTokens: charge.inputTokens, outputTokens: charge.outputTokens,
            reasoningTokens: charge.reasoningTokens, durationMs: charge.durationMs, status: charge.status,
            providerCost: charge.providerCost, agentId: charge.agentId, sessionId: charge.sessionId,
            cost: charge.cost, at: charge.at)
    }

    /// The columns, in this order, that the SQL backends select.
    public static let columns = """
        plan_id, plan_version, tool, quantity, input_tokens, output_tokens, reasoning_tokens, duration_ms, status, \
        provider_cost_nanos, agent_id, session_id, cost_nanos, at_ms
        """
}

/// A closed period's invoice as stored: who and what it bills, and its document (`Invoice.json` — lines and
/// totals), which storage keeps as written.
public struct InvoiceRecord: Sendable, Hashable {
    public var tenantId: String
    public var id: String
    public var customerId: String
    public var subscriptionId: String
    public var periodStart: Date
    public var periodEnd: Date
    public var status: String
    public var document: String
    public var createdAt: Date
    /// What each credit grant paid on the invoice (its credit lines): written with it, counted while it is not
    /// void. Not read back with the invoice (`TollgateStore.creditApplied` sums them).
    public var creditApplications: [CreditDraw] = []
    /// The hand-off to Stripe this write enqueues, in its transaction: `send` with a new invoice, `void` with its
    /// void (only if it was enqueued to be sent). Not read back with the invoice (`TollgateStore.outbox`).
    public var stripeOutbox: OutboxRecord.Kind?

    public init(
        tenantId: String, id: String, customerId: String, subscriptionId: String, periodStart: Date, periodEnd: Date,
        status: String, document: String, createdAt: Date
    ) {
        self.tenantId = tenantId
        self.id = id
        self.customerId = customerId
        self.subscriptionId = subscriptionId
        self.periodStart = periodStart
        self.periodEnd = periodEnd
        self.status = status
        self.document = document
        self.createdAt = createdAt
    }
}

/// One event of an invoice line: the line's number and the event's charge receipt.
public struct InvoiceLineReceipt: Sendable, Hashable {
    public var line: Int
    public var receiptId: String
    public init(line: Int, receiptId: String) {
        self.line = line
        self.receiptId = receiptId
    }
}

extension Discount.Off {
    /// As the SQL backends store it: percent off, or an amount off and its currency (nanos).
    public var stored: (percentNanos: Int64?, amountNanos: Int64?, currency: String?) {
        switch self {
        case .percent(let percent): (percent.nanos, nil, nil)
        case .amount(let amount, let currency): (nil, amount.nanos, currency)
        }
    }
}

/// One invoice's hand-off to Stripe, kept in the outbox until it is done: what to do (`send` the invoice, or
/// `void` it there), how far it has come (`progress`, the Stripe ids of the steps done), and when to try next.
public struct OutboxRecord: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable { case send, void }
    public enum State: String, Sendable, Hashable, CaseIterable {
        /// To do, at `nextAttemptAt`.
        case pending
        case done
        /// Refused by Stripe (or answered unexpectedly): stopped for an operator; `lastError` says why.
        case failed
        /// Not needed any more: an invoice voided before anything of it reached Stripe.
        case cancelled
    }

    public var tenantId: String
    public var invoiceId: String
    public var kind: Kind
    public var state: State
    /// A JSON document (`StripeProgress`).
    public var progress: String
    /// Failed attempts since the last step that went through.
    public var attempts: Int
    public var nextAttemptAt: Date
    public var lastError: String?
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        tenantId: String, invoiceId: String, kind: Kind, state: State = .pending, progress: String = "{}",
        attempts: Int = 0, nextAttemptAt: Date, lastError: String? = nil, createdAt: Date, updatedAt: Date
    ) {
        self.tenantId = tenantId
        self.invoiceId = invoiceId
        self.kind = kind
        self.state = state
        self.progress = progress
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.lastError = lastError
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// A product's catalog as it is stored: a JSON array of `{name, description, estimate?}`.
public enum ProductCatalog {
    public static func json(_ tools: [Product.Tool]) -> JSONValue {
        .array(
            tools.map { tool in
                var fields: [String: JSONValue] = [
                    "name": .string(tool.name), "description": .string(tool.description),
                ]
                if let estimate = tool.estimate {
                    fields["estimate"] = [
                        "quantity": .integer(estimate.quantity), "inputTokens": .integer(estimate.inputTokens),
                        "outputTokens": .integer(estimate.outputTokens),
                        "reasoningTokens": .integer(estimate.reasoningTokens),
                        "durationMs": .integer(estimate.durationMs),
                    ]
                }
                return .object(fields)
            })
    }

    public static func text(_ tools: [Product.Tool]) -> String { JSONCodec.string(json(tools)) }

    public static func tools(_ text: String) throws(StorageError) -> [Product.Tool] {
        guard let items = (try? JSONCodec.parse(Array(text.utf8)))?.arrayValue else {
            throw .backend("a product catalog that is not a JSON array")
        }
        var tools: [Product.Tool] = []
        for item in items {
            guard let name = item["name"]?.stringValue else { throw .backend("a catalog tool without a name") }
            var tool = Product.Tool(name: name, description: item["description"]?.stringValue ?? "")
            if let estimate = item["estimate"] {
                func int(_ field: String, _ fallback: Int64) -> Int64 { estimate[field]?.int64Value ?? fallback }
                tool.estimate = Product.Estimate(
                    quantity: int("quantity", 1), inputTokens: int("inputTokens", 0),
                    outputTokens: int("outputTokens", 0), reasoningTokens: int("reasoningTokens", 0),
                    durationMs: int("durationMs", 0))
            }
            tools.append(tool)
        }
        return tools
    }
}
