import Foundation
import TollgateCore
import TollgateJSON

/// One usage event as `events.ingest` delivers it, once the schema gate has read it: what happened, to whom it is
/// charged (the session, or the agent's default one), and the usage it carries.
public struct UsageEvent: Sendable, Hashable {
    /// What kind of usage an event reports.
    public enum Kind: Sendable, Hashable {
        /// One call of a tool (`tool`, `quantity`), possibly part of a fan-out or a retry (`graph`).
        case toolInvocation
        /// Tokens an LLM used, with its model, provider and what the provider charged.
        case tokenConsumption
        /// A session's start or close.
        case session(SessionAction)
        /// A metric the customer's plan declares (its name is the event's `type`).
        case metric(String)

        public var name: String {
            switch self {
            case .toolInvocation: "tool_invocation"
            case .tokenConsumption: "token_consumption"
            case .session: "session"
            case .metric(let name): name
            }
        }
    }

    public enum SessionAction: String, Sendable, Hashable { case start, close }

    /// Where a tool invocation sits in an agent's task: the invocation it was made for, how many times it was
    /// retried before this attempt, and whether it ran beside its siblings.
    public struct Graph: Sendable, Hashable {
        public var parentInvocationId: String?
        public var retryCount: Int64
        public var parallel: Bool

        public init(parentInvocationId: String? = nil, retryCount: Int64 = 0, parallel: Bool = false) {
            self.parentInvocationId = parentInvocationId
            self.retryCount = retryCount
            self.parallel = parallel
        }
    }

    /// The caller's id for the event: its idempotency key, scoped by tenant.
    public var eventId: String
    public var kind: Kind
    public var occurredAt: Date
    public var sessionId: String?
    /// The tool (`tool_invocation`), or the metered thing a metric counts; nil for sessions.
    public var tool: String?
    public var quantity: Int64
    public var inputTokens: Int64
    public var outputTokens: Int64
    public var reasoningTokens: Int64
    public var providerCost: Money
    public var model: String?
    public var provider: String?
    public var graph: Graph

    public init(
        eventId: String, kind: Kind, occurredAt: Date, sessionId: String? = nil, tool: String? = nil,
        quantity: Int64 = 1, inputTokens: Int64 = 0, outputTokens: Int64 = 0, reasoningTokens: Int64 = 0,
        providerCost: Money = .zero, model: String? = nil, provider: String? = nil, graph: Graph = Graph()
    ) {
        self.eventId = eventId
        self.kind = kind
        self.occurredAt = occurredAt
        self.sessionId = sessionId
        self.tool = tool
        self.quantity = quantity
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.reasoningTokens = reasoningTokens
        self.providerCost = providerCost
        self.model = model
        self.provider = provider
        self.graph = graph
    }
}

/// Why a gate refused an event: a reason an agent or an operator can act on, and the field it is about.
public struct EventRejection: Error, Sendable, Hashable {
    /// `VALIDATION_FAILED`, `TOO_FAR_IN_FUTURE`, `TOO_OLD`, `IDEMPOTENCY_MISMATCH`, …
    public var reason: String
    /// The field the reason is about (`occurredAt`, `properties.inputTokens`, …), if one.
    public var field: String?
    public var message: String

    public init(_ reason: String, field: String? = nil, _ message: String) {
        self.reason = reason
        self.field = field
        self.message = message
    }

    static func invalid(_ field: String, _ rule: String) -> EventRejection {
        EventRejection("VALIDATION_FAILED", field: field, "\(field): \(rule)")
    }
}
