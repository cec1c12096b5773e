import Foundation

/// What a tenant sells: an MCP server, an AI agent, an agentic API or a standard API, with the tools its calls
/// name. A customer subscribes per product; a call names its product (or the customer's only subscription is
/// meant). A closed catalog refuses a tool it does not list; an open one lets the plan price any tool (`*`).
public struct Product: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case mcpServer = "mcp_server"
        case aiAgent = "ai_agent"
        case agenticAPI = "agentic_api"
        case standardAPI = "standard_api"
    }

    /// The usage a call of a tool is expected to have: what `meter.authorize` holds when it is given no estimate.
    public struct Estimate: Sendable, Hashable {
        public var quantity: Int64
        public var inputTokens: Int64
        public var outputTokens: Int64
        public var reasoningTokens: Int64
        public var durationMs: Int64

        public init(
            quantity: Int64 = 1, inputTokens: Int64 = 0, outputTokens: Int64 = 0, reasoningTokens: Int64 = 0,
            durationMs: Int64 = 0
        ) {
            self.quantity = quantity
            self.inputTokens = inputTokens
            self.outputTokens = outputTokens
            self.reasoningTokens = reasoningTokens
            self.durationMs = durationMs
        }
    }

    public struct Tool: Sendable, Hashable {
        public var name: String
        public var description: String
        public var estimate: Estimate?

        public init(name: String, description: String = "", estimate: Estimate? = nil) {
            self.name = name
            self.description = description
            self.estimate = estimate
        }
    }

    public var id: String
    public var tenantId: String
    /// Unique in its tenant: a call may name the product by it.
    public var name: String
    public var kind: Kind
    public var tools: [Tool]
    /// A closed catalog refuses tools it does not list.
    public var closed: Bool
    public var createdAt: Date

    public init(
        id: String, tenantId: String, name: String, kind: Kind, tools: [Tool], closed: Bool, createdAt: Date
    ) {
        self.id = id
        self.tenantId = tenantId
        self.name = name
        self.kind = kind
        self.tools = tools
        self.closed = closed
        self.createdAt = createdAt
    }

    public func tool(_ name: String) -> Tool? { tools.first { $0.name == name } }

    /// Whether a call of `tool` is let through to pricing.
    public func admits(_ tool: String) -> Bool { !closed || self.tool(tool) != nil }
}
