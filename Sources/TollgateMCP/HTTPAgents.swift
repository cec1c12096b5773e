import Foundation
import Logging
import TollgateClient
import TollgateJSON

/// The HTTP proxy's agents: who may use it (a Tollgate agent credential, checked through Tollgate), and for each
/// one its MCP sessions, each metered by its own `ToolCallMeter` and charged to its own Tollgate session.
///
/// A request with an `Mcp-Session-Id` (the handshake era) belongs to that MCP session: one Tollgate session each,
/// closed when the client ends it (`DELETE`). A request without one (2026-07-28, which has no sessions) belongs to
/// the credential's own session, which is closed and started anew after `sessionIdleMs` without a call.
actor HTTPAgents {
    enum Access: Sendable {
        case granted(credential: String)
        /// No credential, or one Tollgate refuses (`invalid`).
        case unauthorized(invalid: Bool, reason: String)
        /// Tollgate cannot be reached to check a credential it has not seen yet.
        case unavailable
    }

    /// What to do with a message from the client.
    enum Admission: Sendable, Equatable {
        case forward
        /// Answer it ourselves with this JSON-RPC message (a refused call).
        case answer([UInt8])
        /// Nothing to send on (a call cancelled while Tollgate decided).
        case nothing
    }

    struct Options: Sendable {
        var tollgate: String
        var holdTTLMs: Int64?
        var retry: RetryPolicy
        var whenUnavailable: ToolCallMeter.UnavailablePolicy
        var annotatePrices: Bool
        var sessionIdleMs: Int64
        /// The product the upstream server is (`--product`).
        var product: String?
        /// How long a checked credential is trusted before it is checked again.
        var recheckAfterMs: Int64 = 30_000
    }

    private struct Agent {
        var settlement: Settlement
        var checkedAt: Date
        var sessions: [String: Session] = [:]
    }

    private struct Session {
        var meter: ToolCallMeter
        var tollgateSessionId: String
        var lastUsed: Date
    }

    private let options: Options
    private let spool: UsageSpool
    private let run: String
    private let logger: Logger
    private var agents: [String: Agent] = [:]
    private var sessionsMade = 0

    init(options: Options, spool: UsageSpool, run: String, logger: Logger) {
        self.options = options
        self.spool = spool
        self.run = run
        self.logger = logger
    }

    /// The session a request belongs to: its MCP session, or the credential's own.
    static func sessionKey(mcpSessionId: String?) -> String { mcpSessionId.map { "h:" + $0 } ?? credentialSession }
    /// The key of the credential's own session (requests without an `Mcp-Session-Id`).
    static let credentialSession = "c"

    /// Checks the bearer credential through Tollgate (again after `recheckAfterMs`, so that a revoked one stops
    /// working). While Tollgate cannot be reached, a credential it accepted before is let through under `allow`.
    func authenticate(token: String) async -> Access {
        let credential = SpoolDelivery.credential(ofToken: token)
        let now = Date()
        if let agent = agents[credential],
            now.timeIntervalSince(agent.checkedAt) * 1000 < Double(options.recheckAfterMs)
        {
            return .granted(credential: credential)
        }
        let settlement =
            agents[credential]?.settlement
            ?? Settlement(
                link: TollgateLink(address: options.tollgate, token: token, product: options.product), spool: spool,
                token: token,
                retry: options.retry, logger: logger)
        do {
            try await settlement.link.verify()
        } catch let error as RPCError where !error.retryable {
            agents[credential]?.checkedAt = .distantPast
            return .unauthorized(invalid: true, reason: error.message)
        } catch {
            guard agents[credential] != nil, options.whenUnavailable == .allow else { return .unavailable }
            return .granted(credential: credential)
        }
        if agents[credential] == nil {
            agents[credential] = Agent(settlement: settlement, checkedAt: now)
            // What an earlier run left in the spool for this credential goes first.
            settlement.drainSoon()
        }
        agents[credential]?.checkedAt = now
        return .granted(credential: credential)
    }

    /// A message from the client: forwarded, answered here (refused), or dropped.
    func admit(_ message: MCPMessage, credential: String, session key: String) async -> Admission {
        guard let settlement = agents[credential]?.settlement else { return .forward }
        let sessionId = session(key, of: credential)
        let actions = agents[credential]!.sessions[key]!.meter.fromClient(message, at: Date())
        var admission = Admission.nothing
        for action in actions {
            switch action {
            case .toServer: admission = .forward
            case .authorize(let callId, let tool, let key2):
                let answer = await ProxyCalls.authorize(
                    link: settlement.link, tool: tool, key: key2, sessionId: sessionId, ttlMs: options.holdTTLMs,
                    retry: options.retry)
                let now = Date()
                for step in mutateMeter(credential, key, { $0.holdAnswered(callId: callId, answer, at: now) }) {
                    switch step {
                    case .toServer: admission = .forward
                    case .toClient(let bytes): admission = .answer(bytes)
                    default: settlement.settle(step, sessionId: sessionId)
                    }
                }
            default: settlement.settle(action, sessionId: sessionId)
            }
        }
        return admission
    }

    /// A message from the server: the bytes the client gets (the message as it came, unless prices were added).
    func answer(_ message: MCPMessage, credential: String, session key: String) async -> [UInt8] {
        guard let settlement = agents[credential]?.settlement, agents[credential]?.sessions[key] != nil else {
            return message.bytes
        }
        let sessionId = agents[credential]!.sessions[key]!.tollgateSessionId
        var out = message.bytes
        var actions = mutateMeter(credential, key) { $0.fromServer(message, at: Date()) }
        while !actions.isEmpty {
            var next: [ToolCallMeter.Action] = []
            for action in actions {
                switch action {
                case .toClient(let bytes): out = bytes
                case .quote(let listingId, let tools):
                    let prices = await ProxyCalls.quote(
                        link: settlement.link, tools: tools, sessionId: sessionId, logger: logger)
                    next += mutateMeter(credential, key) { $0.quoted(listingId: listingId, prices) }
                default: settlement.settle(action, sessionId: sessionId)
                }
            }
            actions = next
        }
        return out
    }

    /// The exchange of a call ended without its result (the client closed the stream, or the server answered
    /// with something else): its hold is given back. True if the call was still running, so that the server can
    /// be told it is cancelled.
    func abandon(callId: String, credential: String, session key: String) -> Bool {
        guard let settlement = agents[credential]?.settlement, let session = agents[credential]?.sessions[key],
            session.meter.isInFlight(callId: callId)
        else { return false }
        for action in mutateMeter(credential, key, { $0.abandoned(callId: callId) }) {
            settlement.settle(action, sessionId: session.tollgateSessionId)
        }
        return true
    }

    /// The client ended an MCP session (`DELETE`): its holds go back and its Tollgate session is closed.
    func endSession(credential: String, session key: String) async {
        guard let settlement = agents[credential]?.settlement,
            let session = agents[credential]?.sessions.removeValue(forKey: key)
        else { return }
        var meter = session.meter
        for action in meter.ended() { settlement.settle(action, sessionId: session.tollgateSessionId) }
        await settlement.close(sessionId: session.tollgateSessionId)
    }

    /// Ends the sessions no request has used for `sessionIdleMs` and that have no call running or waiting for
    /// input: a client that went away without ending its MCP session (no `DELETE`), or a credential that stopped
    /// calling, does not leave its Tollgate session open for ever. A client that comes back later with the same
    /// `Mcp-Session-Id` continues in a new Tollgate session.
    /// First, the holds of tasks whose TTL has passed go back.
    func sweep(now: Date = Date()) async {
        for (credential, agent) in agents {
            for (key, session) in agent.sessions {
                for action in mutateMeter(credential, key, { $0.expireTasks(at: now) }) {
                    agent.settlement.settle(action, sessionId: session.tollgateSessionId)
                }
                if now.timeIntervalSince(session.lastUsed) * 1000 >= Double(options.sessionIdleMs),
                    agents[credential]?.sessions[key]?.meter.isIdle == true
                {
                    await endSession(credential: credential, session: key)
                }
            }
        }
    }

    /// Shutting down: every session ends.
    func finish() async {
        for (credential, agent) in agents {
            for key in agent.sessions.keys { await endSession(credential: credential, session: key) }
        }
    }

    /// The Tollgate session of `key`, made when first needed; the credential's own is made anew after
    /// `sessionIdleMs` without use (the old one is closed beside).
    private func session(_ key: String, of credential: String) -> String {
        let now = Date()
        if let session = agents[credential]?.sessions[key] {
            let idle = now.timeIntervalSince(session.lastUsed) * 1000 >= Double(options.sessionIdleMs)
            if !(key == Self.credentialSession && idle && session.meter.isIdle) {
                agents[credential]?.sessions[key]?.lastUsed = now
                return session.tollgateSessionId
            }
            let settlement = agents[credential]!.settlement
            agents[credential]?.sessions[key] = nil
            Task { await settlement.close(sessionId: session.tollgateSessionId) }
        }
        sessionsMade += 1
        let id = "mcp-\(run)-\(sessionsMade)"
        agents[credential]?.sessions[key] = Session(
            meter: ToolCallMeter(
                keyPrefix: id, whenUnavailable: options.whenUnavailable, annotatePrices: options.annotatePrices),
            tollgateSessionId: id, lastUsed: now)
        return id
    }

    private func mutateMeter(
        _ credential: String, _ key: String, _ body: (inout ToolCallMeter) -> [ToolCallMeter.Action]
    ) -> [ToolCallMeter.Action] {
        guard agents[credential]?.sessions[key] != nil else { return [] }
        return body(&agents[credential]!.sessions[key]!.meter)
    }
}
