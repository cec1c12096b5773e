import Foundation
import Testing
import TollgateCore
import TollgateJSON

@testable import TollgateIngest

/// A batch through the four gates: outcomes in order, duplicates within a batch and against storage, a refused
/// event claiming nothing.
struct EventGatesTests {
    static let now = Timestamp.parse("2026-12-01T12:00:00.000Z")!

    static func event(_ id: String, tool: String = "search", at time: String = "2026-12-01T11:59:00.000Z")
        -> JSONValue
    {
        ["eventId": .string(id), "type": "tool_invocation", "occurredAt": .string(time), "tool": .string(tool)]
    }

    @Test func theFingerprint_ignoresKeyOrderAndSpacing() throws {
        let a = try JSONCodec.parse(Array(#"{"eventId":"e","type":"t","n":1}"#.utf8))
        let b = try JSONCodec.parse(Array(#"{ "n": 1, "type": "t", "eventId": "e" }"#.utf8))
        #expect(
            IdempotencyGate.fingerprint(a, principal: "agt_1") == IdempotencyGate.fingerprint(b, principal: "agt_1"))
        // The same event from another agent of the tenant is another event.
        #expect(
            IdempotencyGate.fingerprint(a, principal: "agt_1") != IdempotencyGate.fingerprint(a, principal: "agt_2"))
        #expect(IdempotencyGate.check("x", stored: nil) == .new)
        #expect(IdempotencyGate.check("x", stored: "x") == .duplicate)
        guard case .mismatch(let rejection) = IdempotencyGate.check("x", stored: "y") else {
            Issue.record("not a mismatch")
            return
        }
        #expect(rejection.reason == "IDEMPOTENCY_MISMATCH" && rejection.field == "eventId")
    }

    @Test func aBatch_isAnsweredInOrder_eachEventOnce() {
        let stored = [
            "seen": IdempotencyGate.fingerprint(Self.event("seen"), principal: "agt_1"),
            "reused": IdempotencyGate.fingerprint(Self.event("reused", tool: "other"), principal: "agt_1"),
        ]
        let batch: [JSONValue] = [
            Self.event("a"),
            Self.event("seen"),  // recorded by an earlier batch: a duplicate
            Self.event("reused"),  // that id was another event: a mismatch
            Self.event("a"),  // again in this batch: a duplicate of the first
            Self.event("b", tool: "x"),
            Self.event("b", tool: "y"),  // the same id, another body, in the same batch
            Self.event("future", at: "2026-12-01T12:06:00.000Z"),
            Self.event("old", at: "2026-11-29T12:00:00.000Z"),
            ["eventId": "bad", "type": "tool_invocation"],
        ]
        let outcomes = EventGates().check(batch, principal: "agt_1", now: Self.now, stored: stored)
        #expect(outcomes.count == batch.count)
        func summary(_ outcome: EventGates.Outcome) -> String {
            switch outcome {
            case .record(let event, let lateness, _): "\(event.eventId):\(lateness)"
            case .duplicate(let id): "\(id):duplicate"
            case .rejected(let id, let rejection): "\(id ?? "?"):\(rejection.reason)"
            }
        }
        #expect(
            outcomes.map(summary) == [
                "a:onTime", "seen:duplicate", "reused:IDEMPOTENCY_MISMATCH", "a:duplicate", "b:onTime",
                "b:IDEMPOTENCY_MISMATCH", "future:TOO_FAR_IN_FUTURE", "old:late", "bad:VALIDATION_FAILED",
            ])
    }

    @Test func aRefusedEvent_claimsNothing_soItsFixCanBeSentUnderTheSameId() {
        let outcomes = EventGates().check(
            [Self.event("e", at: "2026-12-01T13:00:00.000Z"), Self.event("e")], principal: "agt_1", now: Self.now,
            stored: [:])
        guard case .rejected = outcomes[0], case .record(let event, _, _) = outcomes[1] else {
            Issue.record("\(outcomes)")
            return
        }
        #expect(event.eventId == "e")
    }

    @Test func anEventBeforeTheLastClosedPeriodEnd_isAnAdjustment() {
        let closed = Timestamp.parse("2026-12-01T00:00:00.000Z")!
        let outcomes = EventGates().check(
            [Self.event("late", at: "2026-11-30T23:59:59.000Z"), Self.event("now")], principal: "agt_1",
            now: Self.now, stored: [:],
            closedThrough: closed)
        guard case .record(_, let first, _) = outcomes[0], case .record(_, let second, _) = outcomes[1] else {
            Issue.record("\(outcomes)")
            return
        }
        #expect(first == .adjustment && second == .onTime)
    }
}
