import AsyncAlgorithms
import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import TollgateClient
import TollgateCore
import TollgateJSON

/// Puts Tollgate in front of an MCP server that speaks Streamable HTTP, and serves Streamable HTTP itself: every
/// request is relayed to the upstream and every answer back — JSON as a whole, SSE streams event by event as they
/// arrive — while each `tools/call` is metered as on stdio (see `ToolCallMeter`). Agents authenticate with their
/// Tollgate credential (`Authorization: Bearer AGT-…`), checked through Tollgate and never sent upstream.
public struct HTTPProxy: Sendable {
    public struct Options: Sendable {
        /// Where to serve, `host:port`.
        public var listen: String
        /// The upstream MCP endpoint, `http://HOST:PORT/PATH`; the proxy serves the same path.
        public var upstream: String
        /// Headers the proxy sends upstream with every request (`--upstream-header "Name: value"`).
        public var upstreamHeaders: [String]
        public var tollgate: String
        public var spoolPath: String
        public var holdTTLMs: Int64?
        public var whenUnavailable: ToolCallMeter.UnavailablePolicy
        public var annotatePrices: Bool
        /// How long the credential's own Tollgate session (2026-07-28, no MCP sessions) may go without a call.
        public var sessionIdleMs: Int64
        /// The largest request body the proxy reads.
        public var requestBytesMax = 4 << 20
        /// The product the upstream server is (`--product`); nil: each customer's only subscription.
        public var product: String?

        public init(
            listen: String, upstream: String, upstreamHeaders: [String] = [], tollgate: String, spoolPath: String,
            holdTTLMs: Int64? = nil, whenUnavailable: ToolCallMeter.UnavailablePolicy = .block,
            annotatePrices: Bool = false, sessionIdleMs: Int64 = 900_000
        ) {
            self.listen = listen
            self.upstream = upstream
            self.upstreamHeaders = upstreamHeaders
            self.tollgate = tollgate
            self.spoolPath = spoolPath
            self.holdTTLMs = holdTTLMs
            self.whenUnavailable = whenUnavailable
            self.annotatePrices = annotatePrices
            self.sessionIdleMs = sessionIdleMs
        }
    }

    let options: Options
    let logger: Logger

    public init(options: Options, logger: Logger = Logger(label: "tollgate-mcp-proxy")) {
        self.options = options
        self.logger = logger
    }

    /// The headers named by `--upstream-header` values (`Name: value`), or why one is malformed.
    static func upstreamHeaders(_ values: [String]) throws -> [(String, String)] {
        try values.map { value in
            guard let colon = value.firstIndex(of: ":"), value.startIndex < colon else {
                throw ProxyError("--upstream-header takes \"Name: value\", not \(value.debugDescription)")
            }
            let name = value[..<colon].trimmingCharacters(in: .whitespaces)
            guard HTTPField.Name(name) != nil else {
                throw ProxyError("--upstream-header: \(name) is not a header name")
            }
            return (name, value[value.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
    }

    /// Serves until SIGTERM or SIGINT, then ends every MCP session (settling and closing its Tollgate session).
    public func run() async throws {
        guard let upstream = URL(string: options.upstream), let scheme = upstream.scheme,
            ["http", "https"].contains(scheme), upstream.host != nil
        else { throw ProxyError("--upstream must be an http:// or https:// URL, not \(options.upstream)") }
        let (host, port) = try Self.hostAndPort(options.listen)
        let extraHeaders = try Self.upstreamHeaders(options.upstreamHeaders)
        let spool: UsageSpool
        do { spool = try UsageSpool(path: options.spoolPath) } catch {
            throw ProxyError("cannot open the spool at \(options.spoolPath) (\(error)); name another with --spool")
        }
        let agents = HTTPAgents(
            options: HTTPAgents.Options(
                tollgate: options.tollgate, holdTTLMs: options.holdTTLMs, retry: RetryPolicy(attempts: 4),
                whenUnavailable: options.whenUnavailable, annotatePrices: options.annotatePrices,
                sessionIdleMs: options.sessionIdleMs, product: options.product),
            spool: spool, run: Identifiers.randomString(count: 16), logger: logger)
        let exchange = HTTPExchange(
            upstream: options.upstream, extraHeaders: extraHeaders, agents: agents,
            requestBytesMax: options.requestBytesMax, logger: logger)

        let path = upstream.path.isEmpty ? "/" : upstream.path
        let router = Router()
        for method in [HTTPRequest.Method.post, .get, .delete] {
            router.on(RouterPath(path), method: method) { request, _ in try await exchange.handle(request) }
        }
        let logger = self.logger
        let app = Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in
                logger.notice(
                    "serving MCP over Streamable HTTP",
                    metadata: ["listen": "\(channel.localAddress?.description ?? "")", "upstream": "\(upstream)"])
            }, logger: logger)
        let services = ServiceGroup(
            configuration: .init(
                services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        // Idle sessions are ended a few times per idle period.
        let sweeper = Task { [idle = options.sessionIdleMs] in
            let every = Duration.milliseconds(max(50, min(idle / 4, 30_000)))
            while (try? await Task.sleep(for: every)) != nil { await agents.sweep() }
        }
        defer { sweeper.cancel() }
        try await services.run()
        sweeper.cancel()
        await agents.finish()
    }

    static func hostAndPort(_ address: String) throws -> (String, Int) {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
            (0...65_535).contains(port), colon > address.startIndex
        else { throw ProxyError("--listen takes host:port, not \(address)") }
        return (String(address[..<colon]), port)
    }
}

/// One HTTP request through the proxy: authenticated, admitted by the meter, relayed upstream, and its answer
/// relayed back and read by the meter.
struct HTTPExchange: Sendable {
    let upstream: String
    let extraHeaders: [(String, String)]
    let agents: HTTPAgents
    let requestBytesMax: Int
    let logger: Logger

    static let sessionHeader = HTTPField.Name("Mcp-Session-Id")!
    /// Never sent on: the agent's credential stays here, and these belong to one hop only.
    static let notForwarded: Set<String> = [
        "authorization", "host", "content-length", "connection", "keep-alive", "transfer-encoding", "te", "upgrade",
        "proxy-authorization", "proxy-connection",
    ]

    func handle(_ incoming: Request) async throws -> Response {
        var request = incoming
        guard let token = Self.bearer(request.headers) else {
            return Self.unauthorized(
                invalid: false, "a Tollgate agent credential is required: Authorization: Bearer AGT-…")
        }
        let credential: String
        switch await agents.authenticate(token: token) {
        case .granted(let granted): credential = granted
        case .unauthorized(let invalid, let reason): return Self.unauthorized(invalid: invalid, reason)
        case .unavailable:
            return Self.plain(
                .serviceUnavailable, "Tollgate cannot be reached to check the credential; try again shortly")
        }
        let sessionKey = HTTPAgents.sessionKey(mcpSessionId: request.headers[Self.sessionHeader])
        var body: [UInt8] = []
        var message: MCPMessage?
        if request.method == .post {
            let buffer: ByteBuffer
            do { buffer = try await request.collectBody(upTo: requestBytesMax) } catch {
                return Self.plain(.contentTooLarge, "the request body is over \(requestBytesMax) bytes")
            }
            body = Array(buffer: buffer)
            let parsed = MCPMessage(bytes: body)
            message = parsed
            switch await agents.admit(parsed, credential: credential, session: sessionKey) {
            case .forward: break
            case .answer(let answer):
                return Response(
                    status: .ok, headers: [.contentType: "application/json"],
                    body: ResponseBody(byteBuffer: ByteBuffer(bytes: answer)))
            case .nothing: return Response(status: .accepted)
            }
        }
        let callId: String? =
            if case .request(let id, "tools/call")? = message?.kind { ToolCallMeter.callId(id) } else { nil }

        let upstreamResponse: HTTPClientResponse
        do {
            upstreamResponse = try await HTTPClient.shared.execute(
                upstreamRequest(request, body: body), timeout: .hours(24), logger: nil)
        } catch {
            if let callId { _ = await agents.abandon(callId: callId, credential: credential, session: sessionKey) }
            logger.warning("the upstream MCP server cannot be reached", metadata: ["error": "\(error)"])
            return Self.plain(.badGateway, "the upstream MCP server cannot be reached")
        }
        // The client ended its MCP session, or the upstream no longer knows it (404: it ended it, or restarted).
        if sessionKey != HTTPAgents.credentialSession,
            request.method == .delete && (200..<300).contains(upstreamResponse.status.code)
                || upstreamResponse.status.code == 404
        {
            await agents.endSession(credential: credential, session: sessionKey)
        }
        var headers = HTTPFields()
        for (name, value) in upstreamResponse.headers where !Self.notForwarded.contains(name.lowercased()) {
            if let field = HTTPField.Name(name) { headers.append(HTTPField(name: field, value: value)) }
        }
        let status = HTTPResponse.Status(code: Int(upstreamResponse.status.code))
        let contentType = upstreamResponse.headers.first(name: "content-type")?.lowercased() ?? ""
        let agents = self.agents

        if contentType.hasPrefix("text/event-stream") {
            let relay = SSERelay(
                agents: agents, credential: credential, sessionKey: sessionKey, callId: callId, exchange: self)
            return Response(
                status: status, headers: headers,
                body: ResponseBody { writer in try await relay.run(upstreamResponse.body, into: &writer) })
        }
        // A JSON answer (or anything else): read whole, shown to the meter, sent on.
        var answer = try await upstreamResponse.body.collect(upTo: 64 << 20)
        if contentType.hasPrefix("application/json"), answer.readableBytes > 0 {
            let bytes = Array(buffer: answer)
            let relayed = await agents.answer(MCPMessage(bytes: bytes), credential: credential, session: sessionKey)
            if relayed != bytes { answer = ByteBuffer(bytes: relayed) }
        }
        if let callId { _ = await agents.abandon(callId: callId, credential: credential, session: sessionKey) }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: answer))
    }

    /// The request as sent upstream: its method, headers (but the credential and hop-by-hop ones) and body, and
    /// the proxy's own upstream headers.
    func upstreamRequest(_ request: Request, body: [UInt8]) -> HTTPClientRequest {
        var outgoing = HTTPClientRequest(url: upstream)
        outgoing.method = HTTPMethod(rawValue: request.method.rawValue)
        for field in request.headers where !Self.notForwarded.contains(field.name.canonicalName) {
            outgoing.headers.add(name: field.name.rawName, value: field.value)
        }
        for (name, value) in extraHeaders { outgoing.headers.replaceOrAdd(name: name, value: value) }
        if request.method == .post { outgoing.body = .bytes(ByteBuffer(bytes: body)) }
        return outgoing
    }

    /// Tells the upstream a call is cancelled (its client closed the stream before the result).
    func cancelUpstream(callId: String, headers: [(String, String)]) async {
        var request = HTTPClientRequest(url: upstream)
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        for (name, value) in extraHeaders { request.headers.replaceOrAdd(name: name, value: value) }
        request.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
        request.headers.replaceOrAdd(name: "Accept", value: "application/json, text/event-stream")
        let id = (try? JSONCodec.parse(Array(callId.utf8))) ?? .string(callId)
        request.body = .bytes(
            ByteBuffer(
                bytes: JSONCodec.serialize([
                    "jsonrpc": "2.0", "method": "notifications/cancelled",
                    "params": ["requestId": id, "reason": "the client closed the stream"],
                ])))
        _ = try? await HTTPClient.shared.execute(request, timeout: .seconds(10))
    }

    static func bearer(_ headers: HTTPFields) -> String? {
        guard let value = headers[.authorization] else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }

    static func unauthorized(invalid: Bool, _ reason: String) -> Response {
        var challenge = #"Bearer realm="tollgate-mcp-proxy""#
        if invalid {
            challenge +=
                #", error="invalid_token", error_description="\#(reason.replacingOccurrences(of: "\"", with: "'"))""#
        }
        var response = plain(.unauthorized, reason)
        response.headers[.wwwAuthenticate] = challenge
        return response
    }

    static func plain(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: JSONCodec.serialize(["error": .string(text)]))))
    }
}

/// Relays an upstream SSE stream event by event, showing each event's message to the meter; when the stream ends
/// before the call's result (or the client closes it), the call is abandoned: its hold goes back and the upstream
/// is told the call is cancelled.
///
/// A client that gives up on a call closes the stream, and HTTP gives no sign of that until the proxy next
/// writes; so while the upstream is silent the proxy writes an SSE comment (`: tollgate`) every `heartbeat`.
/// SSE clients ignore comments; a closed client makes the write fail, which ends the relay.
struct SSERelay: Sendable {
    let agents: HTTPAgents
    let credential: String
    let sessionKey: String
    let callId: String?
    let exchange: HTTPExchange
    var heartbeat: Duration = .seconds(1)

    static let comment = Array(": tollgate\n\n".utf8)

    private enum Feed: Sendable {
        case bytes(ByteBuffer)
        case heartbeat
        case end
        case failed(any Error)
    }

    func run(_ body: HTTPClientResponse.Body, into writer: inout any ResponseBodyWriter) async throws {
        // A channel, not a buffer: the upstream is read only as fast as the client takes what it sends, so a slow
        // client holds the upstream back instead of filling the proxy's memory.
        let feed = AsyncChannel<Feed>()
        let reader = Task {
            do {
                for try await chunk in body { await feed.send(.bytes(chunk)) }
                await feed.send(.end)
            } catch {
                await feed.send(.failed(error))
            }
        }
        let ticker = Task { [heartbeat] in
            while (try? await Task.sleep(for: heartbeat)) != nil { await feed.send(.heartbeat) }
        }
        defer {
            reader.cancel()
            ticker.cancel()
            feed.finish()
        }
        var events = SSEEvents()
        var quiet = true  // nothing from the upstream since the last heartbeat
        do {
            relaying: for await item in feed {
                switch item {
                case .bytes(let chunk):
                    quiet = false
                    for event in events.feed(chunk.readableBytesView) {
                        try await writer.write(ByteBuffer(bytes: await relayed(event)))
                    }
                case .heartbeat:
                    if quiet, events.isBetweenEvents { try await writer.write(ByteBuffer(bytes: Self.comment)) }
                    quiet = true
                case .end:
                    break relaying
                case .failed(let error):
                    throw error
                }
            }
            if !events.remainder.isEmpty { try await writer.write(ByteBuffer(bytes: events.remainder)) }
            try await writer.finish(nil)
        } catch {
            await abandon(cancelUpstream: true)
            throw error
        }
        await abandon(cancelUpstream: false)
    }

    /// The bytes the client gets for `event`: as they came, unless the meter changed its message (a price added),
    /// then the event's other fields (its id, for resumption) as they came and the new data.
    private func relayed(_ event: SSEEvents.Event) async -> [UInt8] {
        guard let data = event.data else { return event.raw }
        let message = await agents.answer(MCPMessage(bytes: data), credential: credential, session: sessionKey)
        return message == data ? event.raw : SSEEvents.replacingData(of: event.raw, with: message)
    }

    private func abandon(cancelUpstream: Bool) async {
        guard let callId else { return }
        let wasRunning = await agents.abandon(callId: callId, credential: credential, session: sessionKey)
        if wasRunning, cancelUpstream {
            let session = sessionKey.hasPrefix("h:") ? [("Mcp-Session-Id", String(sessionKey.dropFirst(2)))] : []
            await exchange.cancelUpstream(callId: callId, headers: session)
        }
    }
}
