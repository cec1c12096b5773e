import Foundation
import Testing
import TollgateCore
import TollgateJSON

@testable import TollgateIngest

/// The schema gate: each event type's required fields, types and ranges; a refusal names its field.
struct SchemaGateTests {
    static let occurredAt: JSONValue = "2026-12-01T10:00:00.000Z"

    static func tool(_ extra: [String: JSONValue] = [:]) -> JSONValue {
        var fields: [String: JSONValue] = [
            "eventId": "e1", "type": "tool_invocation", "occurredAt": occurredAt, "tool": "search",
        ]
        fields.merge(extra) { $1 }
        return .object(fields)
    }

    static func tokens(_ properties: [String: JSONValue]) -> JSONValue {
        ["eventId": "t1", "type": "token_consumption", "occurredAt": occurredAt, "properties": .object(properties)]
    }

    @Test func aToolInvocation_isReadWithItsGraph() throws {
        let event = try SchemaGate().read(
            Self.tool(["quantity": 3, "sessionId": "s1", "parentInvocationId": "e0", "retryCount": 2, "parallel": true])
        ).get()
        #expect(event.kind == .toolInvocation && event.tool == "search" && event.quantity == 3)
        #expect(event.sessionId == "s1" && event.occurredAt == Timestamp.parse("2026-12-01T10:00:00.000Z"))
        #expect(event.graph == UsageEvent.Graph(parentInvocationId: "e0", retryCount: 2, parallel: true))
        #expect(try SchemaGate().read(Self.tool()).get().graph == UsageEvent.Graph(), "a root call, first try")
    }

    @Test func aTokenConsumption_isReadWithModelProviderAndCost() throws {
        let event = try SchemaGate().read(
            Self.tokens([
                "inputTokens": 1200, "outputTokens": 80, "reasoningTokens": 15, "model": "m-1", "provider": "p",
                "providerCost": "0.0042",
            ])
        ).get()
        #expect(event.kind == .tokenConsumption && event.inputTokens == 1200 && event.reasoningTokens == 15)
        let cost = try Money(decimal: "0.0042")
        #expect(event.model == "m-1" && event.provider == "p" && event.providerCost == cost)
    }

    @Test func sessionsAndDeclaredMetrics() throws {
        let start: JSONValue = [
            "eventId": "s", "type": "session", "occurredAt": Self.occurredAt, "sessionId": "s1",
            "properties": ["action": "start"],
        ]
        #expect(try SchemaGate().read(start).get().kind == .session(.start))
        let metric: JSONValue = [
            "eventId": "m", "type": "pages_rendered", "occurredAt": Self.occurredAt, "quantity": 12,
        ]
        #expect(
            try SchemaGate(declaredMetrics: ["pages_rendered"]).read(metric).get().kind == .metric("pages_rendered"))
        #expect(Self.rejection(SchemaGate().read(metric))?.field == "type", "undeclared: refused")
    }

    static func rejection(_ result: Result<UsageEvent, EventRejection>) -> EventRejection? {
        if case .failure(let rejection) = result { return rejection }
        return nil
    }

    static let refused: [(event: JSONValue, field: String)] = [
        ("not an object", "event"),
        (["type": "tool_invocation", "occurredAt": occurredAt, "tool": "x"], "eventId"),
        (tool(["eventId": ""]), "eventId"),
        (tool(["eventId": .string(String(repeating: "e", count: 129))]), "eventId"),
        (tool(["eventId": "tab\there"]), "eventId"),
        (tool(["eventId": 7]), "eventId"),
        (tool(["type": .null]), "type"),
        (tool(["occurredAt": .null]), "occurredAt"),
        (tool(["occurredAt": "yesterday"]), "occurredAt"),
        // A date that does not exist is not rolled over into the next month.
        (tool(["occurredAt": "2026-02-30T10:00:00Z"]), "occurredAt"),
        (tool(["tool": .null]), "tool"),
        (tool(["quantity": 0]), "quantity"),
        (tool(["quantity": 1_000_000_000_001]), "quantity"),
        (tool(["quantity": .number(1.5)]), "quantity"),
        (tool(["retryCount": -1]), "retryCount"),
        (tool(["retryCount": 1_001]), "retryCount"),
        (tool(["parallel": "yes"]), "parallel"),
        (tool(["parentInvocationId": "e1"]), "parentInvocationId"),
        (tool(["sessionId": 5]), "sessionId"),
        (tool(["properties": [1]]), "properties"),
        (tokens(["inputTokens": -1, "model": "m"]), "properties.inputTokens"),
        (tokens(["model": "m"]), "properties.inputTokens"),
        (tokens(["inputTokens": 5]), "properties.model"),
        (tokens(["inputTokens": 5, "model": "m", "providerCost": "-0.1"]), "properties.providerCost"),
        (tokens(["inputTokens": 5, "model": "m", "providerCost": .number(0.1)]), "properties.providerCost"),
        (
            ["eventId": "s", "type": "session", "occurredAt": occurredAt, "properties": ["action": "start"]],
            "sessionId"
        ),
        (
            [
                "eventId": "s", "type": "session", "occurredAt": occurredAt, "sessionId": "s1",
                "properties": ["action": "pause"],
            ], "properties.action"
        ),
    ]

    @Test(arguments: refused)
    func aBadEvent_isRefused_namingItsField(event: JSONValue, field: String) {
        let rejection = Self.rejection(SchemaGate().read(event))
        #expect(rejection?.reason == "VALIDATION_FAILED")
        #expect(rejection?.field == field, "\(rejection?.message ?? "accepted")")
    }
}
