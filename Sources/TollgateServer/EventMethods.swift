import TollgateCore
import TollgateIngest
import TollgateJSON
import TollgateRuntime
import TollgateWire

/// `events.ingest` (a batch of usage events, one result per event, in order) and `events.get` (one event with its
/// provenance).
enum EventMethods {
    static func register(in router: inout Router) {
        router.agentOrOperator(.eventsIngest, agent: [AgentScope.meterWrite], operator: [OperatorScope.eventsWrite]) {
            params, caller in
            let request = caller.request
            let batchMax = request.configuration.listener.batchMax
            guard case .array(let events)? = params.object["events"] else {
                throw WireError.invalidParams(field: "events", expected: "an array of events")
            }
            guard (1...batchMax).contains(events.count) else {
                throw TollgateError.validation(field: "events", rule: "1 to \(batchMax) events (limits.batchMax)")
            }
            try MeterMethods.checkSource(params)
            let source = try params.optionalString("source").flatMap(EventSource.init(rawValue:)) ?? .rpc
            let sender: TenantActor.EventSender
            var defaultSessionId = request.connection.defaultSessionId
            switch caller {
            case .agent(let agent): sender = .agent(credentialId: agent.credentialId)
            case .tenantOperator(let op):
                // An operator sends an agent's usage: whose it is, the batch says.
                guard let agentId = try params.optionalString("agentId") else {
                    throw WireError.invalidParams(field: "agentId", expected: "the agent whose usage these events are")
                }
                sender = .operatorFor(agentId: agentId, credentialId: op.credential?.id ?? "root")
                // A session is one agent's: each agent an operator sends for gets its own default session.
                defaultSessionId += "-" + agentId
            }
            let outcomes = try await caller.tenant.ingest(
                EventBatch(
                    events: events, source: source, defaultSessionId: defaultSessionId,
                    product: try MeterMethods.product(params, request)),
                from: sender)
            return JSONValue.object(["results": .array(outcomes.map(Self.result))])
        }

        router.agentOrOperator(
            .eventsGet, agent: [AgentScope.meterWrite, AgentScope.usageRead],
            operator: [OperatorScope.billingRead, OperatorScope.eventsWrite]
        ) { params, caller in
            try await caller.tenant.event(
                try params.string("eventId", lengthMax: SchemaGate.idBytesMax), as: caller.viewer)
        }
    }

    /// One event's result on the wire: `{eventId, status, …}`; a refusal says why as an error would (`reason`,
    /// `message`, `retryable`, and the reason's own fields, such as a cap refusal's `hint`).
    static func result(_ outcome: EventOutcome) -> JSONValue {
        switch outcome {
        case .accepted(let receipt):
            var fields: [String: JSONValue] = [
                "eventId": .string(receipt.eventId), "status": .string(receipt.status),
                "receiptId": .string(receipt.receiptId), "cost": .string(receipt.cost.decimalString),
                "currency": .string(receipt.currency),
            ]
            if receipt.lateness == .adjustment { fields["adjustment"] = true }
            return .object(fields)
        case .applied(let id, let lateness):
            return ["eventId": .string(id), "status": .string(lateness == .onTime ? "accepted" : "late")]
        case .duplicate(let id, let receiptId):
            var fields: [String: JSONValue] = ["eventId": .string(id), "status": "duplicate"]
            if let receiptId { fields["receiptId"] = .string(receiptId) }
            return .object(fields)
        case .rejected(let id, let rejection):
            var fields: [String: JSONValue] = [
                "eventId": id.map(JSONValue.string) ?? .null, "status": "rejected",
                "reason": .string(rejection.reason), "message": .string(rejection.message), "retryable": false,
            ]
            if let field = rejection.field { fields["field"] = .string(field) }
            return .object(fields)
        case .refused(let id, let error):
            let wire = WireError(translating: error)
            var fields = wire.data?.objectValue ?? [:]
            fields["eventId"] = .string(id)
            fields["status"] = "rejected"
            fields["message"] = .string(wire.message)
            if fields["reason"] == nil { fields["reason"] = "INTERNAL" }
            return .object(fields)
        }
    }
}
