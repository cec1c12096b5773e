import Foundation
import TollgateCore
import TollgateJSON

/// The metering of one MCP connection's tool calls, as a state machine: given each message (from the client or
/// from the server) and each answer from Tollgate, it says what to do — relay a line unchanged, hold a call's
/// estimated cost before relaying it, commit its usage when its result comes back, release its hold when it is
/// cancelled, or answer a refused call itself. It does no I/O and reads no clock; the proxy's shell does both.
///
/// Only `tools/call` requests from the client are metered. Every other message — notifications, progress,
/// cancellation, the server's own requests (sampling, elicitation, roots) and the client's answers to them —
/// is relayed as it came, byte for byte.
public struct ToolCallMeter: Sendable {
    /// A `tools/call` being metered.
    public struct Call: Sendable, Equatable {
        public let id: JSONValue
        public let tool: String
        /// The idempotency key of its hold: unique per forwarded call, the same for every retry to Tollgate.
        public let key: String
        /// The request line, held until Tollgate answers.
        let line: [UInt8]
        var reservationId: String?
        var forwardedAt: Date?
        var cancelled = false
    }

    /// What the shell must do.
    public enum Action: Sendable, Equatable {
        /// Write this line to the server.
        case toServer([UInt8])
        /// Write this line to the client.
        case toClient([UInt8])
        /// Hold the call's estimated cost (`meter.authorize` under `key`), then report `authorized` or `refused`.
        case authorize(callId: String, tool: String, key: String)
        /// Charge the call's actual usage in place of its hold (`meter.commit`).
        case commit(reservationId: String, usage: CallUsage)
        /// Give the call's hold back (`meter.release`).
        case release(reservationId: String)
    }

    /// What a finished call used, as the proxy measured it and the result reported it.
    public struct CallUsage: Sendable, Equatable {
        public var durationMs: Int64
        /// True when the result had `isError: true` or the server answered with a JSON-RPC error.
        public var failed: Bool
        public var inputTokens: Int64?
        public var outputTokens: Int64?
        public var reasoningTokens: Int64?
        public var providerCost: Money?
        public var model: String?
    }

    /// Why Tollgate refused a call, for the tool error the client gets.
    public struct Refusal: Sendable, Equatable {
        public var reason: String
        public var message: String
        /// What to do about it (a cap's hint says how much is left and when it resets).
        public var hint: String?
        /// The refusal's details, as Tollgate gave them.
        public var details: JSONValue

        public init(reason: String, message: String, hint: String? = nil, details: JSONValue = .object([:])) {
            self.reason = reason
            self.message = message
            self.hint = hint
            self.details = details
        }
    }

    /// Where a tool result reports what the call used: `_meta["dev.tollgate/usage"]` = `{inputTokens?,
    /// outputTokens?, reasoningTokens?, providerCost? (decimal string), model?}`. The project's own prefix: the
    /// `io.modelcontextprotocol/` one is reserved to the specification.
    public static let usageMetaKey = "dev.tollgate/usage"

    /// Where a refusal's details go in the tool error's `structuredContent`.
    public static let refusalKey = "dev.tollgate/refusal"

    private let keyPrefix: String
    private var nextKey: UInt64 = 0
    /// Calls being authorized or running, by their request id (canonical JSON).
    private var calls: [String: Call] = [:]

    /// `keyPrefix` makes this connection's keys unique among every proxy run (a random id per run).
    public init(keyPrefix: String) { self.keyPrefix = keyPrefix }

    /// Calls being authorized or running.
    public var callsInFlight: Int { calls.count }

    public static func callId(_ id: JSONValue) -> String { JSONCodec.string(id) }

    /// A message from the client.
    public mutating func fromClient(_ message: MCPMessage) -> [Action] {
        switch message.kind {
        case .request(let id, "tools/call"):
            guard let tool = message.params?["name"]?.stringValue else { return [.toServer(message.bytes)] }
            let callId = Self.callId(id)
            guard calls[callId] == nil else {
                // A client reusing the id of a call still running: not ours to meter twice; the server decides.
                return [.toServer(message.bytes)]
            }
            nextKey += 1
            let key = "\(keyPrefix)-\(nextKey)"
            calls[callId] = Call(id: id, tool: tool, key: key, line: message.bytes)
            return [.authorize(callId: callId, tool: tool, key: key)]
        case .notification("notifications/cancelled"):
            var actions: [Action] = [.toServer(message.bytes)]
            guard let requestId = message.params?["requestId"] else { return actions }
            let callId = Self.callId(requestId)
            guard var call = calls[callId] else { return actions }
            if let reservationId = call.reservationId {
                // Forwarded and now cancelled: no result will be charged; the hold goes back.
                calls[callId] = nil
                actions.append(.release(reservationId: reservationId))
            } else {
                // Still being authorized: released (not forwarded) once Tollgate answers.
                call.cancelled = true
                calls[callId] = call
                actions = []
            }
            return actions
        default:
            return [.toServer(message.bytes)]
        }
    }

    /// Tollgate held the call's cost: forward it (or, cancelled meanwhile, give the hold back).
    public mutating func authorized(callId: String, reservationId: String, at now: Date) -> [Action] {
        guard var call = calls[callId] else { return [.release(reservationId: reservationId)] }
        if call.cancelled {
            calls[callId] = nil
            return [.release(reservationId: reservationId)]
        }
        call.reservationId = reservationId
        call.forwardedAt = now
        calls[callId] = call
        return [.toServer(call.line)]
    }

    /// Tollgate refused the call: it is not forwarded; the client gets a tool error saying why.
    public mutating func refused(callId: String, _ refusal: Refusal) -> [Action] {
        guard let call = calls.removeValue(forKey: callId) else { return [] }
        if call.cancelled { return [] }
        return [.toClient(Self.refusalLine(id: call.id, refusal))]
    }

    /// A message from the server.
    public mutating func fromServer(_ message: MCPMessage, at now: Date) -> [Action] {
        guard case .response(let id, let isError) = message.kind else { return [.toClient(message.bytes)] }
        let callId = Self.callId(id)
        guard let call = calls[callId], let reservationId = call.reservationId else {
            return [.toClient(message.bytes)]
        }
        calls[callId] = nil
        let result = message.result
        var usage = CallUsage(
            durationMs: max(0, Int64(((now.timeIntervalSince(call.forwardedAt ?? now)) * 1000).rounded())),
            failed: isError || result?["isError"] == true)
        if let reported = result?["_meta"]?[Self.usageMetaKey] {
            usage.inputTokens = reported["inputTokens"]?.int64Value
            usage.outputTokens = reported["outputTokens"]?.int64Value
            usage.reasoningTokens = reported["reasoningTokens"]?.int64Value
            usage.providerCost = reported["providerCost"]?.stringValue.flatMap { try? Money(decimal: $0) }
            usage.model = reported["model"]?.stringValue
        }
        // The answer goes to the client first: the hold already makes the call safe, and the commit follows.
        return [.toClient(message.bytes), .commit(reservationId: reservationId, usage: usage)]
    }

    /// The client ended the connection: every call still held is released.
    public mutating func ended() -> [Action] {
        defer { calls = [:] }
        return calls.values.compactMap { $0.reservationId.map { .release(reservationId: $0) } }
    }

    /// An ordinary `CallToolResult` with `isError: true`: a text saying why and what to do, and the details in
    /// `structuredContent`, so that an agent can read the refusal and act on it.
    static func refusalLine(id: JSONValue, _ refusal: Refusal) -> [UInt8] {
        var text = "Tollgate refused this call (\(refusal.reason)): \(refusal.message)."
        if let hint = refusal.hint { text += " \(hint)" }
        let result: JSONValue = [
            "content": [["type": "text", "text": .string(text)]],
            "isError": true,
            "structuredContent": [
                Self.refusalKey: [
                    "reason": .string(refusal.reason), "message": .string(refusal.message),
                    "details": refusal.details,
                ]
            ],
        ]
        return JSONCodec.serialize(["jsonrpc": "2.0", "id": id, "result": result])
    }
}
