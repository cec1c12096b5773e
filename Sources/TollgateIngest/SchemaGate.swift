import Foundation
import TollgateCore
import TollgateJSON

/// The schema gate: reads one event of a batch, checking the fields its type requires, their types and their
/// ranges. A refusal names the field, so that the sender can fix the event and send it again.
///
/// The wire shape (`docs/PROTOCOL.md`): `{eventId, type, occurredAt, sessionId?, tool?, quantity?,
/// parentInvocationId?, retryCount?, parallel?, properties?}`; token counts, model, provider and provider cost are
/// `properties`, and so is a session event's `action` (`start` or `close`).
public struct SchemaGate: Sendable {
    /// Metric names the customer's plan declares: events of these types are accepted as custom metrics.
    public var declaredMetrics: Set<String>

    public static let idBytesMax = 128
    public static let nameBytesMax = 256
    public static let countMax: Int64 = 1_000_000_000_000
    public static let retryCountMax: Int64 = 1_000

    public init(declaredMetrics: Set<String> = []) {
        self.declaredMetrics = declaredMetrics
    }

    public func read(_ raw: JSONValue) -> Result<UsageEvent, EventRejection> {
        do { return .success(try parse(raw)) } catch { return .failure(error) }
    }

    private func parse(_ raw: JSONValue) throws(EventRejection) -> UsageEvent {
        guard let fields = raw.objectValue else { throw .invalid("event", "an object") }
        let eventId = try Self.text(fields, "eventId", max: Self.idBytesMax, required: true)!
        let typeName = try Self.text(fields, "type", max: Self.nameBytesMax, required: true)!
        guard let written = fields["occurredAt"]?.stringValue else {
            throw .invalid("occurredAt", "an RFC 3339 time, required")
        }
        guard let occurredAt = Timestamp.parse(written) else { throw .invalid("occurredAt", "an RFC 3339 time") }
        let properties: [String: JSONValue]
        switch fields["properties"] {
        case nil, .null?: properties = [:]
        case .object(let object)?: properties = object
        default: throw .invalid("properties", "an object")
        }
        var event = UsageEvent(
            eventId: eventId, kind: .toolInvocation, occurredAt: occurredAt,
            sessionId: try Self.text(fields, "sessionId", max: Self.idBytesMax),
            tool: try Self.text(fields, "tool", max: Self.nameBytesMax))
        event.quantity = try Self.count(fields, "quantity", range: 1...Self.countMax) ?? 1
        switch typeName {
        case "tool_invocation":
            guard event.tool != nil else { throw .invalid("tool", "required for tool_invocation") }
            event.graph = UsageEvent.Graph(
                parentInvocationId: try Self.text(fields, "parentInvocationId", max: Self.idBytesMax),
                retryCount: try Self.count(fields, "retryCount", range: 0...Self.retryCountMax) ?? 0,
                parallel: try Self.flag(fields, "parallel") ?? false)
            guard event.graph.parentInvocationId != eventId else {
                throw .invalid("parentInvocationId", "another event's id, not the event's own")
            }
        case "token_consumption":
            event.kind = .tokenConsumption
            event.inputTokens = try Self.count(properties, "inputTokens", in: "properties") ?? 0
            event.outputTokens = try Self.count(properties, "outputTokens", in: "properties") ?? 0
            event.reasoningTokens = try Self.count(properties, "reasoningTokens", in: "properties") ?? 0
            guard event.inputTokens + event.outputTokens + event.reasoningTokens > 0 else {
                throw .invalid("properties.inputTokens", "some tokens: input, output or reasoning")
            }
            event.model = try Self.text(properties, "model", max: 128, required: true, in: "properties")
            event.provider = try Self.text(properties, "provider", max: 128, in: "properties")
            if let cost = properties["providerCost"] {
                guard let text = cost.stringValue, let money = try? Money(decimal: text), money >= .zero else {
                    throw .invalid("properties.providerCost", "a decimal string, 0 or more")
                }
                event.providerCost = money
            }
        case "session":
            guard event.sessionId != nil else { throw .invalid("sessionId", "required for a session event") }
            guard let action = properties["action"]?.stringValue.flatMap(UsageEvent.SessionAction.init) else {
                throw .invalid("properties.action", "start or close")
            }
            event.kind = .session(action)
            event.tool = nil
        default:
            guard declaredMetrics.contains(typeName) else {
                throw .invalid(
                    "type",
                    "tool_invocation, token_consumption, session, or a metric the plan declares; not \(typeName)")
            }
            event.kind = .metric(typeName)
        }
        return event
    }

    private static func name(_ field: String, in parent: String?) -> String {
        parent.map { "\($0).\(field)" } ?? field
    }

    private static func text(
        _ fields: [String: JSONValue], _ field: String, max: Int, required: Bool = false, in parent: String? = nil
    ) throws(EventRejection) -> String? {
        switch fields[field] {
        case nil, .null?:
            if required { throw .invalid(name(field, in: parent), "required") }
            return nil
        case .string(let text)?:
            guard !text.isEmpty, text.utf8.count <= max, !text.unicodeScalars.contains(where: { $0.value < 0x20 })
            else { throw .invalid(name(field, in: parent), "1 to \(max) bytes, no control characters") }
            return text
        default:
            throw .invalid(name(field, in: parent), "a string")
        }
    }

    private static func count(
        _ fields: [String: JSONValue], _ field: String, range: ClosedRange<Int64> = 0...countMax,
        in parent: String? = nil
    ) throws(EventRejection) -> Int64? {
        switch fields[field] {
        case nil, .null?: return nil
        case .integer(let value)? where range.contains(value): return value
        default: throw .invalid(name(field, in: parent), "an integer from \(range.lowerBound) to \(range.upperBound)")
        }
    }

    private static func flag(_ fields: [String: JSONValue], _ field: String) throws(EventRejection) -> Bool? {
        switch fields[field] {
        case nil, .null?: return nil
        case .bool(let value)?: return value
        default: throw .invalid(field, "true or false")
        }
    }
}
