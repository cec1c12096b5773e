import Foundation
import TollgateCore
import TollgateJSON

extension ChargeRecord {
    /// A charge read back from its row, its columns by name as JSON values (each store reads a row into this
    /// shape, so that one decoder serves them all); nil when a column is missing or of the wrong type.
    public init?(storedColumns row: [String: JSONValue]) {
        func text(_ name: String) -> String? { row[name]?.stringValue }
        func int(_ name: String) -> Int64? {
            switch row[name] {
            case .integer(let value)?: value
            case .bool(let value)?: value ? 1 : 0
            default: nil
            }
        }
        guard let tenantId = text("tenant_id"), let receiptId = text("receipt_id"),
            let customerId = text("customer_id"), let teamId = text("team_id"), let agentId = text("agent_id"),
            let credentialId = text("credential_id"), let sessionId = text("session_id"),
            let subscriptionId = text("subscription_id"), let planId = text("plan_id"),
            let planVersion = int("plan_version"), let tool = text("tool"), let quantity = int("quantity"),
            let costNanos = int("cost_nanos"), let currency = text("currency"), let key = text("idempotency_key"),
            let atMs = int("at_ms")
        else { return nil }
        self.init(
            receiptId: receiptId, tenantId: tenantId,
            path: ChargePath(
                customerId: customerId, teamId: teamId, agentId: agentId, sessionId: sessionId,
                credentialId: credentialId),
            subscriptionId: subscriptionId, planId: planId, planVersion: Int(planVersion), tool: tool,
            quantity: quantity, inputTokens: int("input_tokens") ?? 0, outputTokens: int("output_tokens") ?? 0,
            reasoningTokens: int("reasoning_tokens") ?? 0, durationMs: int("duration_ms") ?? 0,
            status: text("status"), cost: Money(nanos: costNanos),
            providerCost: Money(nanos: int("provider_cost_nanos") ?? 0),
            model: text("model").flatMap { $0.isEmpty ? nil : $0 }, currency: currency, idempotencyKey: key,
            at: Timestamp.date(millis: atMs))
        invocationId = text("invocation_id").flatMap { $0.isEmpty ? nil : $0 } ?? key
        parentInvocationId = text("parent_invocation_id").flatMap { $0.isEmpty ? nil : $0 }
        retryCount = int("retry_count") ?? 0
        parallel = int("parallel") == 1
        occurredAt = int("occurred_at_ms").map(Timestamp.date(millis:))
    }
}
