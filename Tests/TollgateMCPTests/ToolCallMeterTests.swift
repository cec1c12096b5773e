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
        #expect(meter.fromClient(initialize, at: Self.t0) == [.toServer(initialize.bytes)])
        let progress = Self.line(["jsonrpc": "2.0", "method": "notifications/progress", "params": ["progress": 1]])
        #expect(meter.fromServer(progress, at: Self.t0) == [.toClient(progress.bytes)])
        let sampling = Self.line(["jsonrpc": "2.0", "id": 9, "method": "sampling/createMessage", "params": [:]])
        #expect(meter.fromServer(sampling, at: Self.t0) == [.toClient(sampling.bytes)])
        let garbage = MCPMessage(bytes: Array("not json".utf8))
        #expect(meter.fromClient(garbage, at: Self.t0) == [.toServer(garbage.bytes)])
    }

    @Test func aToolCallIsHeld_forwarded_andCommittedWithItsDurationAndReportedUsage() throws {
        var meter = ToolCallMeter(keyPrefix: "run")
        let request = Self.call(7)
        let actions = meter.fromClient(request, at: Self.t0)
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
        #expect(
            done == [
                .toClient(result.bytes),
                .commit(reservationId: "rsv_1", tool: "get_current_time", key: "run-1", usage: usage),
            ])
        #expect(meter.callsInFlight == 0)
    }

    @Test func reportedUsageTollgateWouldRefuse_isLeftOut_andTheCallIsStillCharged() throws {
        let reported: JSONValue = [
            "content": [],
            "_meta": [
                ToolCallMeter.usageMetaKey: [
                    "inputTokens": -3, "outputTokens": 7, "reasoningTokens": 1_000_000_000_001,
                    "providerCost": "-0.5", "model": .string(String(repeating: "m", count: 129)),
                ]
            ],
        ]
        let usage = ToolCallMeter.usage(of: reported, durationMs: 5, failed: false)
        #expect(usage == ToolCallMeter.CallUsage(durationMs: 5, failed: false, outputTokens: 7))
        let fine = ToolCallMeter.usage(
            of: ["_meta": [ToolCallMeter.usageMetaKey: ["providerCost": "0.25", "model": "claude-x"]]], durationMs: 1,
            failed: false)
        #expect(fine.providerCost == (try Money(decimal: "0.25")) && fine.model == "claude-x")
    }

    @Test func anErrorResultOrAJSONRPCError_commitsAFailedCall() {
        var meter = ToolCallMeter(keyPrefix: "run")
        for (id, answer) in [
            (JSONValue.integer(1), JSONValue.object(["result": ["content": [], "isError": true]])),
            (JSONValue.string("a"), JSONValue.object(["error": ["code": -32603, "message": "boom"]])),
        ] {
            _ = meter.fromClient(Self.call(id), at: Self.t0)
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
        _ = meter.fromClient(Self.call(3), at: Self.t0)
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
        _ = meter.fromClient(Self.call(1), at: Self.t0)
        _ = meter.authorized(callId: "1", reservationId: "rsv_1", at: Self.t0)
        let cancel1 = Self.line(["jsonrpc": "2.0", "method": "notifications/cancelled", "params": ["requestId": 1]])
        #expect(meter.fromClient(cancel1, at: Self.t0) == [.toServer(cancel1.bytes), .release(reservationId: "rsv_1")])
        // A late result of the cancelled call is relayed, not charged.
        let late = Self.line(["jsonrpc": "2.0", "id": 1, "result": ["content": []]])
        #expect(meter.fromServer(late, at: Self.t0) == [.toClient(late.bytes)])
        // Cancelled while Tollgate decides: never forwarded, and its hold released when it comes.
        _ = meter.fromClient(Self.call(2), at: Self.t0)
        let cancel2 = Self.line(["jsonrpc": "2.0", "method": "notifications/cancelled", "params": ["requestId": 2]])
        #expect(meter.fromClient(cancel2, at: Self.t0) == [])
        #expect(
            meter.authorized(callId: "2", reservationId: "rsv_2", at: Self.t0) == [.release(reservationId: "rsv_2")])
        #expect(meter.callsInFlight == 0)
    }

    @Test func keysAreUniquePerForwardedCall_evenWhenClientsReuseIds() {
        var meter = ToolCallMeter(keyPrefix: "run")
        var keys: [String] = []
        for _ in 0..<3 {
            guard case .authorize(_, _, let key)? = meter.fromClient(Self.call(1), at: Self.t0).first else { continue }
            keys.append(key)
            _ = meter.authorized(callId: "1", reservationId: "rsv", at: Self.t0)
            _ = meter.fromServer(Self.line(["jsonrpc": "2.0", "id": 1, "result": ["content": []]]), at: Self.t0)
        }
        #expect(keys == ["run-1", "run-2", "run-3"])
    }

    @Test func anEndedConnectionReleasesEveryHold() {
        var meter = ToolCallMeter(keyPrefix: "run")
        _ = meter.fromClient(Self.call(1), at: Self.t0)
        _ = meter.authorized(callId: "1", reservationId: "rsv_1", at: Self.t0)
        _ = meter.fromClient(Self.call(2), at: Self.t0)
        #expect(meter.ended() == [.release(reservationId: "rsv_1")])
        #expect(meter.callsInFlight == 0)
    }

    @Test func whenTollgateIsUnreachable_blockRefusesTheCall_withoutRunningIt() throws {
        var meter = ToolCallMeter(keyPrefix: "run", whenUnavailable: .block)
        _ = meter.fromClient(Self.call(4), at: Self.t0)
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
        _ = meter.fromClient(request, at: Self.t0)
        #expect(meter.unavailable(callId: "5", at: Self.t0) == [.toServer(request.bytes)])
        let result = Self.line(["jsonrpc": "2.0", "id": 5, "result": ["content": [], "isError": true]])
        let usage = ToolCallMeter.CallUsage(durationMs: 40, failed: true)
        // The spool first: no hold stands for this call, so its usage must be on disk before anything else.
        #expect(
            meter.fromServer(result, at: Self.t0.addingTimeInterval(0.04)) == [
                .spool(tool: "search", key: "run-1", usage: usage), .toClient(result.bytes),
            ])
        // Cancelled while running unheld: relayed, nothing to release, nothing spooled.
        _ = meter.fromClient(Self.call(6), at: Self.t0)
        _ = meter.unavailable(callId: "6", at: Self.t0)
        let cancel = Self.line(["jsonrpc": "2.0", "method": "notifications/cancelled", "params": ["requestId": 6]])
        #expect(meter.fromClient(cancel, at: Self.t0) == [.toServer(cancel.bytes)])
        #expect(meter.ended() == [])
        // Cancelled before Tollgate's answer came: neither run nor answered.
        _ = meter.fromClient(Self.call(7), at: Self.t0)
        let cancel7 = Self.line(["jsonrpc": "2.0", "method": "notifications/cancelled", "params": ["requestId": 7]])
        #expect(meter.fromClient(cancel7, at: Self.t0) == [])
        #expect(meter.unavailable(callId: "7", at: Self.t0) == [])
        #expect(meter.callsInFlight == 0)
    }

    @Test func annotatePrices_putsEachListedToolsPriceInItsMeta_orListsAsWrittenWithoutThem() throws {
        var meter = ToolCallMeter(keyPrefix: "run", annotatePrices: true)
        let request = Self.line(["jsonrpc": "2.0", "id": 2, "method": "tools/list"])
        #expect(meter.fromClient(request, at: Self.t0) == [.toServer(request.bytes)])
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
        #expect(
            tools.first?["_meta"]?[ToolCallMeter.priceMetaKey] == [
                "amount": "0.001", "currency": "USD", "unit": "call",
            ])
        #expect(tools.first?["_meta"]?["vendor/x"] == 1, "the server's own _meta stays")
        #expect(tools.last?["_meta"]?[ToolCallMeter.priceMetaKey]?["amount"] == "0.25")
        #expect(answer["result"]?["nextCursor"] == "c2" && tools.first?["inputSchema"] == ["type": "object"])
        // Tollgate could not quote: the listing goes on exactly as the server wrote it.
        _ = meter.fromClient(request, at: Self.t0)
        _ = meter.fromServer(listing, at: Self.t0)
        #expect(meter.notPriced(listingId: "2") == [.toClient(listing.bytes)])
        // Without the option, listings are relayed untouched.
        var plain = ToolCallMeter(keyPrefix: "run")
        _ = plain.fromClient(request, at: Self.t0)
        #expect(plain.fromServer(listing, at: Self.t0) == [.toClient(listing.bytes)])
    }

    @Test func inputRequired_keepsTheHold_andTheRetryCompletesTheCallOnce() {
        var meter = ToolCallMeter(keyPrefix: "run")
        func deploy(_ id: Int64, _ extra: [String: JSONValue] = [:]) -> MCPMessage {
            var params: [String: JSONValue] = ["name": "deploy", "arguments": ["target": "prod"]]
            for (field, value) in extra { params[field] = value }
            return Self.line(["jsonrpc": "2.0", "id": .integer(id), "method": "tools/call", "params": .object(params)])
        }
        _ = meter.fromClient(deploy(1), at: Self.t0)
        _ = meter.authorized(callId: "1", reservationId: "rsv_1", at: Self.t0)
        // Round 1 asks for input: relayed, not committed; the hold stands.
        let asks = Self.line([
            "jsonrpc": "2.0", "id": 1,
            "result": ["resultType": "input_required", "inputRequests": ["confirm": [:]], "requestState": "st-1"],
        ])
        #expect(meter.fromServer(asks, at: Self.t0.addingTimeInterval(0.010)) == [.toClient(asks.bytes)])
        #expect(meter.callsAwaitingInput == 1 && meter.callsInFlight == 0)
        // Round 2, a new request id with the answers: forwarded at once under the same hold, no second hold.
        let retry = deploy(2, ["inputResponses": ["confirm": ["action": "accept"]], "requestState": "st-1"])
        #expect(meter.fromClient(retry, at: Self.t0.addingTimeInterval(5)) == [.toServer(retry.bytes)])
        let done = Self.line(["jsonrpc": "2.0", "id": 2, "result": ["resultType": "complete", "content": []]])
        let actions = meter.fromServer(done, at: Self.t0.addingTimeInterval(5.030))
        // Charged once, for the server's time on both rounds (not the user's 5 s to answer).
        #expect(
            actions == [
                .toClient(done.bytes),
                .commit(
                    reservationId: "rsv_1", tool: "deploy", key: "run-1",
                    usage: ToolCallMeter.CallUsage(durationMs: 40, failed: false)),
            ])
        #expect(meter.callsAwaitingInput == 0 && meter.callsInFlight == 0)
        // A plain call of the same tool (no inputResponses, no requestState) is a new call with a hold of its own.
        #expect(meter.fromClient(deploy(3), at: Self.t0) == [.authorize(callId: "3", tool: "deploy", key: "run-2")])
        // A call left waiting for input is released when the client goes.
        _ = meter.authorized(callId: "3", reservationId: "rsv_3", at: Self.t0)
        _ = meter.fromServer(
            Self.line(["jsonrpc": "2.0", "id": 3, "result": ["resultType": "input_required", "requestState": "st-3"]]),
            at: Self.t0)
        #expect(meter.ended() == [.release(reservationId: "rsv_3")])
    }
}
