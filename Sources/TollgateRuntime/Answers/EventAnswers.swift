import Foundation
import TollgateCore
import TollgateIngest
import TollgateJSON
import TollgateStorage

/// Where a batch of events came from, kept in each event's provenance: a caller of `events.ingest` (`rpc`, the
/// default), an SDK, the MCP proxy, or `tollgate events upload`.
public enum EventSource: String, Sendable, CaseIterable {
    case rpc, sdk, proxy, upload
}

/// A batch for `events.ingest`: the events as sent, where they came from, and the session charged for the events
/// that name none (the connection's).
public struct EventBatch: Sendable {
    public var events: [JSONValue]
    public var source: EventSource
    public var defaultSessionId: String
    /// The product whose subscription prices the batch (an id or a name); nil: the customer's only subscription.
    public var product: String?

    public init(events: [JSONValue], source: EventSource, defaultSessionId: String, product: String? = nil) {
        self.product = product
        self.events = events
        self.source = source
        self.defaultSessionId = defaultSessionId
    }
}

/// What became of one event of a batch.
public enum EventOutcome: Sendable {
    /// Recorded now: `accepted`, or `late` (see `EventReceipt.lateness`).
    case accepted(EventReceipt)
    /// A session event applied: its session opened (or found open) or closed.
    case applied(eventId: String, lateness: LatenessGate.Verdict)
    /// Recorded before, under this id, with this very body: nothing new was recorded.
    case duplicate(eventId: String, receiptId: String?)
    /// Refused by a gate: fixed, it can be sent again under the same id.
    case rejected(eventId: String?, EventRejection)
    /// Refused by what a verified call is refused by — a cap (`BUDGET_EXCEEDED`), a closed session, the margin
    /// guard — or not recorded because storage failed: its id stays free.
    case refused(eventId: String, TollgateError)

    /// Whether this batch recorded it (its id is now taken by it).
    var isRecorded: Bool {
        switch self {
        case .accepted, .applied: true
        case .duplicate, .rejected, .refused: false
        }
    }
}

/// What an accepted event was charged.
public struct EventReceipt: Sendable, Hashable {
    public var eventId: String
    public var receiptId: String
    public var cost: Money
    public var currency: String
    public var sessionId: String
    /// When it counts: when it was ingested (never before its session opened).
    public var chargedAt: Date
    public var lateness: LatenessGate.Verdict

    /// `accepted`, or `late` for an event flagged late (an adjustment is late too).
    public var status: String { lateness == .onTime ? "accepted" : "late" }
}

/// What is stored under an accepted event's id, in the same row as its charge: its result and its provenance.
/// The event as sent is stored beside it (the idempotency record's params), and the billing context it was rated
/// in is the charge's own columns (customer, team, agent, session, subscription, plan version, cost).
struct EventProvenance {
    /// What every event of a batch shares, formatted once per batch.
    struct Batch {
        var ingestedAt: Date
        var ingestedAtText: String
        var source: EventSource

        init(ingestedAt: Date, source: EventSource) {
            self.ingestedAt = ingestedAt
            ingestedAtText = Timestamp.format(ingestedAt)
            self.source = source
        }
    }

    var receipt: EventReceipt
    var type: String
    var occurredAt: Date
    var batch: Batch

    /// The stored JSON, written directly: one is made for every event of every batch, and a `JSONValue` tree
    /// serialized with sorted keys cost a fifth of a batch's time. Every text that comes from a caller is escaped.
    var text: String {
        // Charged when ingested, unless its session opened later than that (a clock that stepped back).
        let chargedAt =
            receipt.chargedAt == batch.ingestedAt ? batch.ingestedAtText : Timestamp.format(receipt.chargedAt)
        var text = #"{"eventId":"# + JSONCodec.string(.string(receipt.eventId))
        text += #","status":""# + receipt.status + #"","type":"# + JSONCodec.string(.string(type))
        text += #","receiptId":""# + receipt.receiptId + #"","cost":""# + receipt.cost.decimalString
        text +=
            #"","currency":""# + receipt.currency + #"","sessionId":"# + JSONCodec.string(.string(receipt.sessionId))
        text += #","occurredAt":""# + Timestamp.format(occurredAt) + #"","chargedAt":""# + chargedAt
        text += #"","ingestedAt":""# + batch.ingestedAtText + #"","source":""# + batch.source.rawValue
        text += #"","gates":["schema","idempotency","timestamp","lateness"]"#
        if receipt.lateness == .adjustment { text += #","adjustment":true"# }
        return text + "}"
    }
}

/// `events.get`'s answer: the event as sent, what became of it, where it came from, the gates it passed, and the
/// billing context it was rated in (its charge).
public struct EventView: JSONRepresentable {
    var stored: IdempotencyRecord
    var sentBy: String?
    var payload: JSONValue?
    /// What was stored under the id: an event's result and provenance, or a call's answer.
    var result: JSONValue
    var charge: ChargeRecord?

    public var json: JSONValue {
        let isBatchEvent = stored.method == "events.ingest"
        var fields: [String: JSONValue] = [
            "eventId": .string(stored.key), "method": .string(stored.method),
            "payload": payload ?? .null,
            "status": result["status"] ?? "accepted",
            "type": result["type"] ?? (isBatchEvent ? "session" : "tool_invocation"),
            // A call's own `source`, if it gave one: the proxy and the SDK wrapper say who they are.
            "source": result["source"] ?? payload?["source"] ?? "rpc",
            "ingestedAt": result["ingestedAt"] ?? .string(Timestamp.format(stored.createdAt)),
            // What a call passed on its way in: the RPC's own validation and the idempotency rule.
            "gates": result["gates"] ?? ["schema", "idempotency"],
        ]
        if let sentBy { fields["agentId"] = .string(sentBy) }
        if let occurredAt = result["occurredAt"] ?? charge.map({ .string(Timestamp.format($0.at)) }) {
            fields["occurredAt"] = occurredAt
        }
        if result["adjustment"] == true { fields["adjustment"] = true }
        if let charge {
            var context: [String: JSONValue] = [
                "receiptId": .string(charge.receiptId), "customerId": .string(charge.customerId),
                "teamId": .string(charge.teamId), "agentId": .string(charge.agentId),
                "credentialId": .string(charge.credentialId), "sessionId": .string(charge.sessionId),
                "subscriptionId": .string(charge.subscriptionId), "planId": .string(charge.planId),
                "planVersion": .integer(Int64(charge.planVersion)), "tool": .string(charge.tool),
                "quantity": .integer(charge.quantity), "inputTokens": .integer(charge.inputTokens),
                "outputTokens": .integer(charge.outputTokens), "reasoningTokens": .integer(charge.reasoningTokens),
                "durationMs": .integer(charge.durationMs), "price": .string(charge.cost.decimalString),
                "providerCost": .string(charge.providerCost.decimalString), "currency": .string(charge.currency),
                "chargedAt": .string(Timestamp.format(charge.at)),
            ]
            if let model = charge.model { context["model"] = .string(model) }
            if let parent = charge.parentInvocationId { context["parentInvocationId"] = .string(parent) }
            if charge.retryCount > 0 { context["retryCount"] = .integer(charge.retryCount) }
            if charge.parallel { context["parallel"] = true }
            fields["context"] = .object(context)
        } else if isBatchEvent, let session = result["sessionId"] {
            fields["context"] = ["sessionId": session]
        }
        return .object(fields)
    }
}
