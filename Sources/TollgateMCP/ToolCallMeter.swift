import Foundation
import TollgateClient
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
        var phase: Phase
        /// The server's time on the call's earlier rounds (`resultType: input_required`), in milliseconds.
        var earlierRoundsMs: Int64 = 0
    }

    /// A call the server answered with `resultType: "input_required"` (2026-07-28, multi round-trip requests):
    /// not complete, so not committed; its hold stands until the client's retry — a new `tools/call` of the same
    /// tool carrying `inputResponses` or the `requestState` the server gave — completes it.
    struct AwaitingInput: Sendable, Equatable {
        var tool: String
        var key: String
        var reservationId: String?
        var requestState: String?
        var roundsMs: Int64
    }

    /// A call the server answered with a task (`resultType: "task"`, the tasks extension): the call runs on after
    /// its answer, so its hold stands until the task's status — in a `tasks/get` answer or a `notifications/tasks`
    /// — says it is over: `completed` is committed, `failed` and `cancelled` are released. A task whose status
    /// nobody asks for is released when its TTL passes (`expireTasks`).
    struct RunningTask: Sendable, Equatable {
        var tool: String
        var key: String
        var reservationId: String?
        /// When the call was forwarded, and the server's time on its earlier rounds: its duration if the server
        /// gives no timestamps.
        var forwardedAt: Date
        var earlierRoundsMs: Int64
        /// When the proxy first saw the task, and its TTL from then (nil: unlimited; the server may change it).
        var seenAt: Date
        var ttlMs: Int64?
        var expiresAt: Date? { ttlMs.map { seenAt.addingTimeInterval(Double($0) / 1000) } }
    }

    /// Where a metered call is.
    enum Phase: Sendable, Equatable {
        /// Waiting for Tollgate's hold; `cancelled` when the client cancelled it meanwhile.
        case authorizing(cancelled: Bool)
        /// Held and forwarded: its result is committed against the hold.
        case held(reservationId: String, forwardedAt: Date)
        /// Forwarded without a hold, Tollgate being unreachable (`--on-unavailable allow`): its usage is spooled.
        case unheld(forwardedAt: Date)
    }

    /// What to do with a call while Tollgate cannot be reached.
    public enum UnavailablePolicy: String, Sendable, CaseIterable {
        /// Answer it with a tool error saying so, without running it: no call runs that Tollgate has not held.
        case block
        /// Run it, and keep its usage in the spool until Tollgate can take it. Caps cannot hold meanwhile.
        case allow
    }

    /// What the shell must do.
    public enum Action: Sendable, Equatable {
        /// Write this line to the server.
        case toServer([UInt8])
        /// Write this line to the client.
        case toClient([UInt8])
        /// Hold the call's estimated cost (`meter.authorize` under `key`), then report `authorized` or `refused`.
        case authorize(callId: String, tool: String, key: String)
        /// Charge the call's actual usage in place of its hold (`meter.commit`); the call's tool and key go with
        /// it, for the spool, should the hold be gone before the commit can be delivered.
        case commit(reservationId: String, tool: String, key: String, usage: CallUsage)
        /// Give the call's hold back (`meter.release`).
        case release(reservationId: String)
        /// Ask Tollgate for these tools' prices (`meter.quote`), then report `priced` or `notPriced` for the
        /// `tools/list` answer `listingId` (`--annotate-prices`).
        case quote(listingId: String, tools: [String])
        /// Keep the usage of a call run without a hold in the durable spool, before its answer goes to the client;
        /// it is recorded (`meter.verify` under `key`) once Tollgate can be reached.
        case spool(tool: String, key: String, usage: CallUsage)
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

    /// Where `--annotate-prices` puts a tool's price in a `tools/list` answer: `_meta["dev.tollgate/price"]` =
    /// `{amount (decimal string), currency, unit: "call"}`.
    public static let priceMetaKey = "dev.tollgate/price"

    /// Where a refusal's details go in the tool error's `structuredContent`.
    public static let refusalKey = "dev.tollgate/refusal"

    private let keyPrefix: String
    private let whenUnavailable: UnavailablePolicy
    private let annotatePrices: Bool
    private var nextKey: UInt64 = 0
    /// `tools/list` requests awaiting their answer, and answers awaiting their prices (`--annotate-prices`).
    private var listings: Set<String> = []
    private var listingsBeingPriced: [String: MCPMessage] = [:]
    /// Calls waiting for the client's input, oldest first.
    private var awaitingInput: [AwaitingInput] = []
    /// Calls being authorized or running, by their request id (canonical JSON).
    private var calls: [String: Call] = [:]
    /// Calls running as tasks, by task id; and the client's `tasks/get` requests awaiting their answer (request id
    /// to task id).
    private var tasks: [String: RunningTask] = [:]
    private var taskPolls: [String: String] = [:]

    /// `keyPrefix` makes this connection's keys unique among every proxy run (a random id per run).
    /// `annotatePrices` puts each listed tool's price for this agent in `tools/list` answers.
    public init(keyPrefix: String, whenUnavailable: UnavailablePolicy = .block, annotatePrices: Bool = false) {
        self.keyPrefix = keyPrefix
        self.whenUnavailable = whenUnavailable
        self.annotatePrices = annotatePrices
    }

    /// Calls being authorized or running.
    public var callsInFlight: Int { calls.count }

    public static func callId(_ id: JSONValue) -> String { JSONCodec.string(id) }

    /// A message from the client.
    public mutating func fromClient(_ message: MCPMessage, at now: Date) -> [Action] {
        switch message.kind {
        case .request(let id, "tools/call"):
            guard let tool = message.params?["name"]?.stringValue else { return [.toServer(message.bytes)] }
            let callId = Self.callId(id)
            guard calls[callId] == nil else {
                // A client reusing the id of a call still running: not ours to meter twice; the server decides.
                return [.toServer(message.bytes)]
            }
            if let resumed = resume(tool: tool, params: message.params) {
                // The next round of a call that asked for input: forwarded under the hold it already has.
                calls[callId] = Call(
                    id: id, tool: tool, key: resumed.key, line: message.bytes,
                    phase: resumed.reservationId.map { .held(reservationId: $0, forwardedAt: now) }
                        ?? .unheld(forwardedAt: now),
                    earlierRoundsMs: resumed.roundsMs)
                return [.toServer(message.bytes)]
            }
            nextKey += 1
            let key = "\(keyPrefix)-\(nextKey)"
            calls[callId] = Call(
                id: id, tool: tool, key: key, line: message.bytes, phase: .authorizing(cancelled: false))
            return [.authorize(callId: callId, tool: tool, key: key)]
        case .request(let id, "tools/list") where annotatePrices:
            listings.insert(Self.callId(id))
            return [.toServer(message.bytes)]
        case .request(let id, "tasks/get"):
            if let taskId = message.params?["taskId"]?.stringValue, tasks[taskId] != nil {
                taskPolls[Self.callId(id)] = taskId
            }
            return [.toServer(message.bytes)]
        case .notification("notifications/cancelled"):
            var actions: [Action] = [.toServer(message.bytes)]
            guard let requestId = message.params?["requestId"] else { return actions }
            let callId = Self.callId(requestId)
            guard var call = calls[callId] else { return actions }
            switch call.phase {
            case .held(let reservationId, _):
                // Forwarded and now cancelled: no result will be charged; the hold goes back.
                calls[callId] = nil
                actions.append(.release(reservationId: reservationId))
            case .unheld:
                // Run without a hold: nothing to give back, and nothing is charged.
                calls[callId] = nil
            case .authorizing:
                // Not forwarded yet, so the server never hears of it: released once Tollgate answers.
                call.phase = .authorizing(cancelled: true)
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
        guard var call = calls[callId], case .authorizing(let cancelled) = call.phase else {
            return [.release(reservationId: reservationId)]
        }
        if cancelled {
            calls[callId] = nil
            return [.release(reservationId: reservationId)]
        }
        call.phase = .held(reservationId: reservationId, forwardedAt: now)
        calls[callId] = call
        return [.toServer(call.line)]
    }

    /// Tollgate refused the call: it is not forwarded; the client gets a tool error saying why.
    public mutating func refused(callId: String, _ refusal: Refusal) -> [Action] {
        guard let call = calls.removeValue(forKey: callId) else { return [] }
        if case .authorizing(cancelled: true) = call.phase { return [] }
        return [.toClient(Self.refusalLine(id: call.id, refusal))]
    }

    /// Tollgate could not be reached for the call's hold: refused with a tool error saying so (`block`), or run
    /// without a hold, its usage spooled (`allow`).
    public mutating func unavailable(callId: String, at now: Date) -> [Action] {
        guard var call = calls[callId], case .authorizing(let cancelled) = call.phase else { return [] }
        switch (whenUnavailable, cancelled) {
        case (_, true):
            calls[callId] = nil
            return []
        case (.block, false):
            return refused(callId: callId, Self.unavailableRefusal)
        case (.allow, false):
            call.phase = .unheld(forwardedAt: now)
            calls[callId] = call
            return [.toServer(call.line)]
        }
    }

    /// The refusal of a call Tollgate could not hold.
    public static let unavailableRefusal = Refusal(
        reason: "UNAVAILABLE", message: "Tollgate cannot be reached, so the call was not run",
        hint: "Try again shortly.")

    /// A message from the server.
    public mutating func fromServer(_ message: MCPMessage, at now: Date) -> [Action] {
        if case .notification("notifications/tasks") = message.kind, let task = message.params {
            return Self.ordered(message.bytes, taskStatus(task, at: now))
        }
        guard case .response(let id, let isError) = message.kind else { return [.toClient(message.bytes)] }
        let callId = Self.callId(id)
        if let taskId = taskPolls.removeValue(forKey: callId) {
            guard !isError, let task = message.result, task["taskId"]?.stringValue == taskId else {
                return [.toClient(message.bytes)]
            }
            return Self.ordered(message.bytes, taskStatus(task, at: now))
        }
        if listings.remove(callId) != nil, !isError, let tools = message.result?["tools"]?.arrayValue {
            let names = tools.compactMap { $0["name"]?.stringValue }
            if !names.isEmpty {
                listingsBeingPriced[callId] = message
                return [.quote(listingId: callId, tools: names)]
            }
        }
        guard let call = calls[callId] else { return [.toClient(message.bytes)] }
        let forwardedAt: Date
        switch call.phase {
        case .authorizing: return [.toClient(message.bytes)]  // not forwarded by us: not its answer
        case .held(_, let at), .unheld(let at): forwardedAt = at
        }
        calls[callId] = nil
        let result = message.result
        let roundMs = max(0, Int64((now.timeIntervalSince(forwardedAt) * 1000).rounded()))
        if !isError, result?["resultType"] == "input_required" {
            // Not complete: the hold stands until the client's retry completes the call.
            let reservationId: String? = if case .held(let id, _) = call.phase { id } else { nil }
            awaitingInput.append(
                AwaitingInput(
                    tool: call.tool, key: call.key, reservationId: reservationId,
                    requestState: result?["requestState"]?.stringValue, roundsMs: call.earlierRoundsMs + roundMs))
            return [.toClient(message.bytes)]
        }
        let reservationId: String? = if case .held(let id, _) = call.phase { id } else { nil }
        if !isError, result?["resultType"] == "task", let taskId = result?["taskId"]?.stringValue {
            // Answered with a task: the call goes on. Its status may already be final (a task seeded completed).
            tasks[taskId] = RunningTask(
                tool: call.tool, key: call.key, reservationId: reservationId, forwardedAt: forwardedAt,
                earlierRoundsMs: call.earlierRoundsMs, seenAt: now, ttlMs: nil)
            return Self.ordered(message.bytes, taskStatus(result!, at: now))
        }
        let usage = Self.usage(
            of: result, durationMs: call.earlierRoundsMs + roundMs, failed: isError || result?["isError"] == true)
        return Self.ordered(message.bytes, [Self.charge(tool: call.tool, key: call.key, reservationId, usage)])
    }

    /// What a finished call's result reports it used (`_meta["dev.tollgate/usage"]`), with its duration. A field
    /// Tollgate would refuse (a negative count, a cost that is not a decimal, an empty or overlong model name) is
    /// left out: the call is still charged, never held back by what its server reported.
    package static func usage(of result: JSONValue?, durationMs: Int64, failed: Bool) -> CallUsage {
        var usage = CallUsage(durationMs: durationMs, failed: failed)
        guard let reported = result?["_meta"]?[Self.usageMetaKey] else { return usage }
        func count(_ field: String) -> Int64? {
            reported[field]?.int64Value.flatMap { (0...Self.reportedCountMax).contains($0) ? $0 : nil }
        }
        usage.inputTokens = count("inputTokens")
        usage.outputTokens = count("outputTokens")
        usage.reasoningTokens = count("reasoningTokens")
        usage.providerCost = reported["providerCost"]?.stringValue.flatMap { try? Money(decimal: $0) }
            .flatMap { $0 >= .zero ? $0 : nil }
        usage.model = reported["model"]?.stringValue.flatMap { (1...128).contains($0.utf8.count) ? $0 : nil }
        return usage
    }

    /// The largest count Tollgate takes in a call's usage.
    static let reportedCountMax: Int64 = 1_000_000_000_000

    /// The line to the client and what settles a call: a spooled usage first (durable before the client has its
    /// answer: no hold stands for the call), a commit or release after (the hold already makes the call safe).
    static func ordered(_ line: [UInt8], _ settling: [Action]) -> [Action] {
        let spooled = settling.filter { if case .spool = $0 { true } else { false } }
        let rest = settling.filter { if case .spool = $0 { false } else { true } }
        return spooled + [.toClient(line)] + rest
    }

    /// A finished call is charged: against its hold, or — run without one — through the spool.
    package static func charge(tool: String, key: String, _ reservationId: String?, _ usage: CallUsage) -> Action {
        if let reservationId { return .commit(reservationId: reservationId, tool: tool, key: key, usage: usage) }
        return .spool(tool: tool, key: key, usage: usage)
    }

    /// A task's status, from the server (a `tasks/get` answer, a `notifications/tasks`, or the task's creation):
    /// a finished task is settled, a running one has its TTL brought up to date.
    private mutating func taskStatus(_ task: JSONValue, at now: Date) -> [Action] {
        guard let taskId = task["taskId"]?.stringValue, var running = tasks[taskId] else { return [] }
        switch task["status"]?.stringValue {
        case "completed":
            tasks[taskId] = nil
            let result = task["result"]
            let usage = Self.usage(
                of: result, durationMs: running.earlierRoundsMs + Self.taskDurationMs(task, running, now),
                failed: result?["isError"] == true)
            return [Self.charge(tool: running.tool, key: running.key, running.reservationId, usage)]
        case "failed", "cancelled":
            tasks[taskId] = nil
            return running.reservationId.map { [.release(reservationId: $0)] } ?? []
        default:
            // working, input_required (answered through tasks/update, which is relayed as it comes)
            if let ttl = task["ttlMs"] {
                running.ttlMs = ttl.int64Value
                tasks[taskId] = running
            }
            return []
        }
    }

    /// How long the task ran: from its `createdAt` to its `lastUpdatedAt` when the server gives both, else from
    /// when the call was forwarded to when the proxy saw it finished.
    static func taskDurationMs(_ task: JSONValue, _ running: RunningTask, _ now: Date) -> Int64 {
        if let created = task["createdAt"]?.stringValue.flatMap(Self.timestamp),
            let updated = task["lastUpdatedAt"]?.stringValue.flatMap(Self.timestamp), updated >= created
        {
            return Int64((updated.timeIntervalSince(created) * 1000).rounded())
        }
        return max(0, Int64((now.timeIntervalSince(running.forwardedAt) * 1000).rounded()))
    }

    static func timestamp(_ text: String) -> Date? {
        if let date = try? Date(
            text,
            strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true)
                .timeZone(separator: .omitted))
        {
            return date
        }
        return try? Date(text, strategy: .iso8601)
    }

    /// Tasks whose TTL has passed without a final status: the server may have discarded them, and nobody will
    /// learn how they ended, so their holds go back.
    public mutating func expireTasks(at now: Date) -> [Action] {
        var actions: [Action] = []
        for (taskId, task) in tasks {
            guard let expiresAt = task.expiresAt, expiresAt <= now else { continue }
            tasks[taskId] = nil
            if let reservationId = task.reservationId { actions.append(.release(reservationId: reservationId)) }
        }
        return actions
    }

    /// Calls running as tasks.
    public var tasksRunning: Int { tasks.count }

    /// No call is being authorized, running, waiting for input or running as a task: the connection's session
    /// can end without losing track of one.
    public var isIdle: Bool { calls.isEmpty && awaitingInput.isEmpty && tasks.isEmpty }

    /// What Tollgate answered to a call's hold, whichever it was (the shells' one way in).
    package mutating func holdAnswered(callId: String, _ answer: ProxyCalls.HoldAnswer, at now: Date) -> [Action] {
        switch answer {
        case .held(let reservationId): authorized(callId: callId, reservationId: reservationId, at: now)
        case .refused(let refusal): refused(callId: callId, refusal)
        case .unavailable: unavailable(callId: callId, at: now)
        }
    }

    /// What Tollgate answered to a listing's quote: its prices, or nil when it could not quote.
    package mutating func quoted(listingId: String, _ prices: PriceList?) -> [Action] {
        guard let prices else { return notPriced(listingId: listingId) }
        return priced(
            listingId: listingId, currency: prices.currency, prices: prices.prices.mapValues(\.decimalString))
    }

    /// Tollgate quoted the listed tools: the answer goes on with each tool's price in its `_meta`.
    public mutating func priced(listingId: String, currency: String, prices: [String: String]) -> [Action] {
        guard let message = listingsBeingPriced.removeValue(forKey: listingId) else { return [] }
        guard var response = message.json?.objectValue, var result = response["result"]?.objectValue,
            let tools = result["tools"]?.arrayValue
        else { return [.toClient(message.bytes)] }
        result["tools"] = .array(
            tools.map { tool in
                guard var fields = tool.objectValue, let name = fields["name"]?.stringValue, let amount = prices[name]
                else { return tool }
                var meta = fields["_meta"]?.objectValue ?? [:]
                meta[Self.priceMetaKey] = ["amount": .string(amount), "currency": .string(currency), "unit": "call"]
                fields["_meta"] = .object(meta)
                return .object(fields)
            })
        response["result"] = .object(result)
        return [.toClient(JSONCodec.serialize(.object(response)))]
    }

    /// Tollgate could not quote them: the answer goes on as the server wrote it.
    public mutating func notPriced(listingId: String) -> [Action] {
        guard let message = listingsBeingPriced.removeValue(forKey: listingId) else { return [] }
        return [.toClient(message.bytes)]
    }

    /// The client ended the connection: every call still held is released (waiting for input, or running as a
    /// task, included: nobody is left to learn how it ends).
    public mutating func ended() -> [Action] {
        defer {
            calls = [:]
            awaitingInput = []
            tasks = [:]
            taskPolls = [:]
        }
        let running: [Action] = calls.values.compactMap { call in
            guard case .held(let reservationId, _) = call.phase else { return nil }
            return .release(reservationId: reservationId)
        }
        return running + awaitingInput.compactMap { $0.reservationId.map { .release(reservationId: $0) } }
            + tasks.values.compactMap { $0.reservationId.map { .release(reservationId: $0) } }
    }

    /// Calls waiting for the client's input.
    public var callsAwaitingInput: Int { awaitingInput.count }

    /// Whether the call with this id is being authorized or running.
    public func isInFlight(callId: String) -> Bool { calls[callId] != nil }

    /// The call will get no result (its HTTP exchange ended without one, say): its hold is given back.
    public mutating func abandoned(callId: String) -> [Action] {
        guard let call = calls.removeValue(forKey: callId) else { return [] }
        switch call.phase {
        case .held(let reservationId, _): return [.release(reservationId: reservationId)]
        case .authorizing:
            // Released once Tollgate answers, as a cancelled call is.
            calls[callId] = Call(
                id: call.id, tool: call.tool, key: call.key, line: call.line, phase: .authorizing(cancelled: true))
            return []
        case .unheld: return []
        }
    }

    /// The call a retry continues, taken out of those waiting: a `tools/call` of the same tool carrying
    /// `inputResponses` or `requestState` — the one whose `requestState` it echoes, else the oldest of that tool.
    private mutating func resume(tool: String, params: JSONValue?) -> AwaitingInput? {
        let state = params?["requestState"]?.stringValue
        guard state != nil || params?["inputResponses"] != nil else { return nil }
        let index =
            awaitingInput.firstIndex { $0.tool == tool && state != nil && $0.requestState == state }
            ?? awaitingInput.firstIndex { $0.tool == tool }
        return index.map { awaitingInput.remove(at: $0) }
    }

    /// An ordinary `CallToolResult` with `isError: true`: a text saying why and what to do, and the details in
    /// `structuredContent`, so that an agent can read the refusal and act on it.
    package static func refusalLine(id: JSONValue, _ refusal: Refusal) -> [UInt8] {
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
