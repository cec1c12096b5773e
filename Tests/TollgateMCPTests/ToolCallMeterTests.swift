import Foundation
import Testing
import TollgateCore
import TollgateJSON

@testable import TollgateMCP

/// The tool-call meter without a process or a socket: what it relays, holds, commits and releases.
@Suite struct ToolCallMeterTests {
    static let t0 = Date(timeIntervalSince1970: 1_795_000_000)

    static func line(_ json: JSONValue) -> MCPMessage { MCPMessage(bytes: JSONCodec.serialize(json)) }

    static func call(_ id: JSONValue, tool: String = "get_current_time") -> MCPMessage {
        line(["jsonrpc": "2.0", "id": id, "method": "tools/call", "params": ["name": .string(tool), "arguments": [:]]])
    }

    @Test func everythingButToolCallsIsRelayedByteForByte() {
        var meter = ToolCallMeter(keyPrefix: "run")
        // Odd spacing and key order survive: the bytes are relayed, not re-serialized.
        let initialize = MCPMessage(bytes: Array(#"{"id": 1, "jsonrpc":"2.0","method":"initialize","params":{}}"#.utf8))
        #expect(meter.fromClient(initialize) == [.toServer(initialize.bytes)])
        let progress = Self.line(["jsonrpc": "2.0", "method": "notifications/progress", "params": ["progress": 1]])
        #expect(meter.fromServer(progress, at: Self.t0) == [.toClient(progress.bytes)])
        let sampling = Self.line(["jsonrpc": "2.0", "id": 9, "method": "sampling/createMessage", "params": [:]])
        #expect(meter.fromServer(sampling, at: Self.t0) == [.toClient(sampling.bytes)])
        let garbage = MCPMessage(bytes: Array("not json".utf8))
        #expect(meter.fromClient(garbage) == [.toServer(garbage.bytes)])
    }

    @Test func aToolCallIsHeld_forwarded_andCommittedWithItsDurationAndReportedUsage() throws {
        var meter = ToolCallMeter(keyPrefix: "run")
        let request = Self.call(7)
        let actions = meter.fromClient(request)
        #expect(actions == [.authorize(callId: "7", tool: "get_current_time", key: "run-1")])
        #expect(meter.authorized(callId: "7", reservationId: "rsv_1", at: Self.t0) == [.toServer(request.bytes)])
        let result = Self.line([
            "jsonrpc": "2.0", "id": 7,
            "result": [
                "content": [], "isError": false,
                "_meta": [ToolCallMeter.usageMetaKey: ["inputTokens": 12, "providerCost": "0.0021", "model": "m"]],
            ],
        ])
        let done = meter.fromServer(result, at: Self.t0.addingTimeInterval(0.25))
        let usage = ToolCallMeter.CallUsage(
            durationMs: 250, failed: false, inputTokens: 12, providerCost: try Money(decimal: "0.0021"), model: "m")
        #expect(done == [.toClient(result.bytes), .commit(reservationId: "rsv_1", tool: "get_current_time", key: "run-1", usage: usage)])
        #expect(meter.callsInFlight == 0)
    }

    @Test func anErrorResultOrAJSONRPCError_commitsAFailedCall() {
        var meter = ToolCallMeter(keyPrefix: "run")
        for (id, answer) in [
            (JSONValue.integer(1), JSONValue.object(["result": ["content": [], "isError": true]])),
            (JSONValue.string("a"), JSONValue.object(["error": ["code": -32603, "message": "boom"]])),
        ] {
            _ = meter.fromClient(Self.call(id))
            _ = meter.authorized(callId: ToolCallMeter.callId(id), reservationId: "rsv", at: Self.t0)
            var response = answer.objectValue!
            response["jsonrpc"] = "2.0"
            response["id"] = id
            let actions = meter.fromServer(Self.line(.object(response)), at: Self.t0)
            guard case .commit(_, _, _, let usage)? = actions.last else {
                Issue.record("no commit")
                continue
            }
            #expect(usage.failed)
        }
    }

    @Test func aRefusedCallIsNotForwarded_andTheClientReadsWhy() throws {
        var meter = ToolCallMeter(keyPrefix: "run")
        _ = meter.fromClient(Self.call(3))
        let refusal = ToolCallMeter.Refusal(
            reason: "BUDGET_EXCEEDED", message: "budget exceeded",
            hint: "agent cap of 1 USD (day) has 0 USD left. It resets at 2026-12-02T00:00:00.000Z.",
            details: ["scope": "agent"])
        let actions = meter.refused(callId: "3", refusal)
        guard case .toClient(let bytes)? = actions.first, actions.count == 1 else {
            Issue.record("\(actions)")
            return
        }
        let answer = try JSONCodec.parse(bytes)
        #expect(answer["id"] == 3)
        #expect(answer["result"]?["isError"] == true)
        let text = answer["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue ?? ""
        #expect(text.contains("BUDGET_EXCEEDED") && text.contains("resets at"))
        #expect(answer["result"]?["structuredContent"]?[ToolCallMeter.refusalKey]?["details"]?["scope"] == "agent")
        #expect(meter.callsInFlight == 0)
    }

    @Test func aCancelledCallGivesItsHoldBack_whetherForwardedOrStillBeingAuthorized() {
        var meter = ToolCallMeter(keyPrefix: "run")
        // Forwarded, then cancelled: relayed, and released.
        _ = meter.fromClient(Self.call(1))
        _ = meter.authorized(callId: "1", reservationId: "rsv_1", at: Self.t0)
        let cancel1 = Self.line(["jsonrpc": "2.0", "method": "notifications/cancelled", "params": ["requestId": 1]])
        #expect(meter.fromClient(cancel1) == [.toServer(cancel1.bytes), .release(reservationId: "rsv_1")])
        // A late result of the cancelled call is relayed, not charged.
        let late = Self.line(["jsonrpc": "2.0", "id": 1, "result": ["content": []]])
        #expect(meter.fromServer(late, at: Self.t0) == [.toClient(late.bytes)])
        // Cancelled while Tollgate decides: never forwarded, and its hold released when it comes.
        _ = meter.fromClient(Self.call(2))
        let cancel2 = Self.line(["jsonrpc": "2.0", "method": "notifications/cancelled", "params": ["requestId": 2]])
        #expect(meter.fromClient(cancel2) == [])
        #expect(
            meter.authorized(callId: "2", reservationId: "rsv_2", at: Self.t0) == [.release(reservationId: "rsv_2")])
        #expect(meter.callsInFlight == 0)
    }

    @Test func keysAreUniquePerForwardedCall_evenWhenClientsReuseIds() {
        var meter = ToolCallMeter(keyPrefix: "run")
        var keys: [String] = []
        for _ in 0..<3 {
            guard case .authorize(_, _, let key)? = meter.fromClient(Self.call(1)).first else { continue }
            keys.append(key)
            _ = meter.authorized(callId: "1", reservationId: "rsv", at: Self.t0)
            _ = meter.fromServer(Self.line(["jsonrpc": "2.0", "id": 1, "result": ["content": []]]), at: Self.t0)
        }
        #expect(keys == ["run-1", "run-2", "run-3"])
    }

    @Test func anEndedConnectionReleasesEveryHold() {
        var meter = ToolCallMeter(keyPrefix: "run")
        _ = meter.fromClient(Self.call(1))
        _ = meter.authorized(callId: "1", reservationId: "rsv_1", at: Self.t0)
        _ = meter.fromClient(Self.call(2))
        #expect(meter.ended() == [.release(reservationId: "rsv_1")])
        #expect(meter.callsInFlight == 0)
    }

    @Test func whenTollgateIsUnreachable_blockRefusesTheCall_withoutRunningIt() throws {
        var meter = ToolCallMeter(keyPrefix: "run", whenUnavailable: .block)
        _ = meter.fromClient(Self.call(4))
        let actions = meter.unavailable(callId: "4", at: Self.t0)
        guard case .toClient(let bytes)? = actions.first, actions.count == 1 else {
            Issue.record("\(actions)")
            return
        }
        let answer = try JSONCodec.parse(bytes)
        #expect(answer["result"]?["isError"] == true)
        #expect(answer["result"]?["structuredContent"]?[ToolCallMeter.refusalKey]?["reason"] == "UNAVAILABLE")
        #expect(meter.callsInFlight == 0)
    }

    @Test func whenTollgateIsUnreachable_allowRunsTheCall_andSpoolsItsUsageBeforeTheClientHasItsAnswer() {
        var meter = ToolCallMeter(keyPrefix: "run", whenUnavailable: .allow)
        let request = Self.call(5, tool: "search")
        _ = meter.fromClient(request)
        #expect(meter.unavailable(callId: "5", at: Self.t0) == [.toServer(request.bytes)])
        let result = Self.line(["jsonrpc": "2.0", "id": 5, "result": ["content": [], "isError": true]])
        let usage = ToolCallMeter.CallUsage(durationMs: 40, failed: true)
        // The spool first: no hold stands for this call, so its usage must be on disk before anything else.
        #expect(
            meter.fromServer(result, at: Self.t0.addingTimeInterval(0.04)) == [
                .spool(tool: "search", key: "run-1", usage: usage), .toClient(result.bytes),
            ])
        // Cancelled while running unheld: relayed, nothing to release, nothing spooled.
        _ = meter.fromClient(Self.call(6))
        _ = meter.unavailable(callId: "6", at: Self.t0)
        let cancel = Self.line(["jsonrpc": "2.0", "method": "notifications/cancelled", "params": ["requestId": 6]])
        #expect(meter.fromClient(cancel) == [.toServer(cancel.bytes)])
        #expect(meter.ended() == [])
        // Cancelled before Tollgate's answer came: neither run nor answered.
        _ = meter.fromClient(Self.call(7))
        let cancel7 = Self.line(["jsonrpc": "2.0", "method": "notifications/cancelled", "params": ["requestId": 7]])
        #expect(meter.fromClient(cancel7) == [])
        #expect(meter.unavailable(callId: "7", at: Self.t0) == [])
        #expect(meter.callsInFlight == 0)
    }

    @Test func annotatePrices_putsEachListedToolsPriceInItsMeta_orListsAsWrittenWithoutThem() throws {
        var meter = ToolCallMeter(keyPrefix: "run", annotatePrices: true)
        let request = Self.line(["jsonrpc": "2.0", "id": 2, "method": "tools/list"])
        #expect(meter.fromClient(request) == [.toServer(request.bytes)])
        let listing = Self.line([
            "jsonrpc": "2.0", "id": 2,
            "result": [
                "tools": [
                    ["name": "cheap", "inputSchema": ["type": "object"], "_meta": ["vendor/x": 1]],
                    ["name": "dear", "inputSchema": ["type": "object"]],
                ],
                "nextCursor": "c2",
            ],
        ])
        #expect(meter.fromServer(listing, at: Self.t0) == [.quote(listingId: "2", tools: ["cheap", "dear"])])
        let actions = meter.priced(listingId: "2", currency: "USD", prices: ["cheap": "0.001", "dear": "0.25"])
        guard case .toClient(let bytes)? = actions.first, actions.count == 1 else {
            Issue.record("\(actions)")
            return
        }
        let answer = try JSONCodec.parse(bytes)
        let tools = answer["result"]?["tools"]?.arrayValue ?? []
        #expect(tools.first?["_meta"]?[ToolCallMeter.priceMetaKey] == ["amount": "0.001", "currency": "USD", "unit": "call"])
        #expect(tools.first?["_meta"]?["vendor/x"] == 1, "the server's own _meta stays")
        #expect(tools.last?["_meta"]?[ToolCallMeter.priceMetaKey]?["amount"] == "0.25")
        #expect(answer["result"]?["nextCursor"] == "c2" && tools.first?["inputSchema"] == ["type": "object"])
        // Tollgate could not quote: the listing goes on exactly as the server wrote it.
        _ = meter.fromClient(request)
        _ = meter.fromServer(listing, at: Self.t0)
        #expect(meter.notPriced(listingId: "2") == [.toClient(listing.bytes)])
        // Without the option, listings are relayed untouched.
        var plain = ToolCallMeter(keyPrefix: "run")
        _ = plain.fromClient(request)
        #expect(plain.fromServer(listing, at: Self.t0) == [.toClient(listing.bytes)])
    }
}
