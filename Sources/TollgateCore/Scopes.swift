/// What an agent credential may do. Every agent method needs one of these (the table in `docs/PROTOCOL.md`,
/// checked against the routes by a test).
public enum AgentScope {
    /// `meter.*` and `events.ingest`; also opens and closes sessions, as it did before `session:write` existed.
    public static let meterWrite = "meter:write"
    /// Reading the agent's own sessions and events.
    public static let usageRead = "usage:read"
    /// `session.open` and `session.close` alone, for an agent that opens sessions another credential meters in.
    public static let sessionWrite = "session:write"
    /// Minting child credentials for sub-agents (`credentials.delegate`).
    public static let credentialsDelegate = "credentials:delegate"
    public static let all: Set<String> = [meterWrite, usageRead, sessionWrite, credentialsDelegate]
}

/// What an operator credential may do. `operator` may do everything in its tenant, as the token of
/// `tenants.create` always could; the others each cover one part of the operator methods.
public enum OperatorScope {
    public static let all = "operator"
    /// Plans, products and subscriptions.
    public static let plansWrite = "plans:write"
    /// Teams, agents and their credentials; session settings.
    public static let agentsWrite = "agents:write"
    public static let capsWrite = "caps:write"
    /// Usage, periods, invoices, reports, credit balances, discounts, sessions: reading.
    public static let billingRead = "billing:read"
    /// Customers, closing periods, voiding invoices, credits, discounts, re-rating.
    public static let billingWrite = "billing:write"
    public static let alertsRead = "alerts:read"
    /// Sending an agent's usage (`events.ingest` with `agentId`) and reading events.
    public static let eventsWrite = "events:write"
    public static let every: Set<String> = [
        all, plansWrite, agentsWrite, capsWrite, billingRead, billingWrite, alertsRead, eventsWrite,
    ]
}
