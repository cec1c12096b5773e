import Foundation
import Logging
import MCP
import Synchronization
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateMCP

/// Tollgate metering inside an MCP server built on the official Swift SDK (modelcontextprotocol/swift-sdk): wrap
/// the server's `CallTool` handler once, and every call is held, run and charged to the agent — or refused with
/// a tool error the agent can read — exactly as `tollgate-mcp-proxy` does in front of a server it cannot change:
///
/// ```swift
/// let metering = try ToolMetering(options: .init(tollgate: "127.0.0.1:7420", token: agentToken))
/// await server.withMethodHandler(CallTool.self, handler: metering.meter { params in
///     CallTool.Result(content: [.text(text: "…", annotations: nil, _meta: nil)])
/// })
/// …
/// await metering.finish()  // when the server stops: settles what is left and closes the Tollgate session
/// ```
///
/// A call is held first (`meter.authorize`, the tool's price for one call, against every cap on the agent's
/// path), then run; its result goes back at once and its usage is committed beside — duration, `FAILED` when
/// the result has `isError` or the handler throws, and what the result reports in
/// `_meta["dev.tollgate/usage"]`. A call the SDK cancels (the client's `notifications/cancelled`) gives its
/// hold back. What Tollgate cannot take now waits in the spool (a SQLite file) and is sent when it can, under
/// the same keys: nothing is lost or counted twice. One server process is one Tollgate session.
public final class ToolMetering: Sendable {
    public struct Options: Sendable {
        /// Tollgate's `host:port`.
        public var tollgate: String
        /// The agent's credential (`AGT-…`); never logged.
        public var token: String
        /// The spool's SQLite file.
        public var spoolPath: String
        /// How long a call's hold lasts if this process dies first; nil for Tollgate's limit.
        public var holdTTLMs: Int64?
        /// While Tollgate cannot be reached: refuse each call with a tool error (`block`), or run it and spool
        /// its usage (`allow`; caps cannot hold meanwhile).
        public var whenUnavailable: ToolCallMeter.UnavailablePolicy
        /// The product this server is; nil: the customer's only subscription.
        public var product: String?

        public init(
            tollgate: String, token: String, spoolPath: String? = nil, holdTTLMs: Int64? = nil,
            whenUnavailable: ToolCallMeter.UnavailablePolicy = .block
        ) {
            self.tollgate = tollgate
            self.token = token
            self.spoolPath =
                spoolPath ?? StdioProxy.Options.defaultSpoolPath(environment: ProcessInfo.processInfo.environment)
            self.holdTTLMs = holdTTLMs
            self.whenUnavailable = whenUnavailable
        }
    }

    public typealias Handler = @Sendable (CallTool.Parameters) async throws -> CallTool.Result

    private let options: Options
    private let settlement: Settlement
    private let retry = RetryPolicy(attempts: 4)
    private let logger: Logger
    /// This process's Tollgate session, and the prefix of its calls' keys.
    public let sessionId: String
    private let keys = KeyCounter()

    public init(options: Options, logger: Logger = Logger(label: "tollgate-mcp-swift")) throws {
        self.options = options
        self.logger = logger
        let spool: UsageSpool
        do { spool = try UsageSpool(path: options.spoolPath) } catch {
            throw ProxyError("cannot open the spool at \(options.spoolPath) (\(error))")
        }
        sessionId = "mcp-\(Identifiers.randomString(count: 16))"
        settlement = Settlement(
            link: TollgateLink(address: options.tollgate, token: options.token, product: options.product), spool: spool,
            token: options.token,
            source: "sdk", retry: retry, logger: logger)
        // What an earlier run left in the spool goes first.
        settlement.drainSoon()
    }

    /// `handler`, metered: the handler to register for `CallTool`.
    public func meter(_ handler: @escaping Handler) -> Handler {
        { [self] params in try await self.call(params, handler) }
    }

    /// Settles every call started so far and closes the Tollgate session with its final record (or leaves the
    /// close in the spool, after the calls it waits for).
    public func finish() async {
        await settlement.close(sessionId: sessionId)
    }

    private func call(_ params: CallTool.Parameters, _ handler: Handler) async throws -> CallTool.Result {
        let key = "\(sessionId)-\(keys.next())"
        let answer = await ProxyCalls.authorize(
            link: settlement.link, tool: params.name, key: key, sessionId: sessionId, ttlMs: options.holdTTLMs,
            source: "sdk", retry: retry)
        let reservationId: String?
        switch answer {
        case .held(let id): reservationId = id
        case .refused(let refusal): return try Self.refusal(refusal)
        case .unavailable:
            guard options.whenUnavailable == .allow else { return try Self.refusal(ToolCallMeter.unavailableRefusal) }
            reservationId = nil
        }
        let started = ContinuousClock.now
        let result: CallTool.Result
        do {
            try Task.checkCancellation()
            result = try await handler(params)
        } catch {
            if error is CancellationError || Task.isCancelled {
                // Cancelled: no result, nothing charged; the hold goes back.
                if let reservationId { settlement.release(reservationId: reservationId) }
            } else {
                settle(
                    params.name, key, reservationId,
                    ToolCallMeter.usage(
                        of: nil, durationMs: Self.milliseconds(since: started), failed: true))
            }
            throw error
        }
        let json = try? JSONCodec.parse(Array(JSONEncoder().encode(result)))
        settle(
            params.name, key, reservationId,
            ToolCallMeter.usage(
                of: json, durationMs: Self.milliseconds(since: started), failed: result.isError == true))
        return result
    }

    /// Charged against its hold, or — run without one — spooled, durable before the result goes back.
    private func settle(_ tool: String, _ key: String, _ reservationId: String?, _ usage: ToolCallMeter.CallUsage) {
        settlement.settle(ToolCallMeter.charge(tool: tool, key: key, reservationId, usage), sessionId: sessionId)
    }

    /// The refusal as a tool result, the same the proxy answers (its text and `structuredContent`).
    static func refusal(_ refusal: ToolCallMeter.Refusal) throws -> CallTool.Result {
        let line = try JSONCodec.parse(ToolCallMeter.refusalLine(id: 0, refusal))
        return try JSONDecoder().decode(CallTool.Result.self, from: Data(JSONCodec.serialize(line["result"] ?? [:])))
    }

    static func milliseconds(since start: ContinuousClock.Instant) -> Int64 {
        let elapsed = ContinuousClock.now - start
        return elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000
    }
}

/// The calls' numbers within a process, for their keys.
private final class KeyCounter: Sendable {
    private let value = Mutex<UInt64>(0)
    func next() -> UInt64 {
        value.withLock {
            $0 += 1
            return $0
        }
    }
}
