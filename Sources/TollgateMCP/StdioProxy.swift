import Foundation
import Logging
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateWire
import UnixSignals

/// Puts Tollgate in front of an MCP server that speaks stdio: starts it as a child process, speaks MCP on this
/// process's own stdin and stdout, and meters every `tools/call` (see `ToolCallMeter`). One proxy run is one MCP
/// connection, and one Tollgate session (`mcp-<run>`), closed with its final record when the client goes away.
public struct StdioProxy: Sendable {
    public struct Options: Sendable {
        /// Tollgate's `host:port`.
        public var tollgate: String
        /// The agent's `AGT-` token (never logged).
        public var token: String
        /// The MCP server to start, and its arguments.
        public var command: [String]
        /// How long each Tollgate call may keep being retried, in attempts (`RetryPolicy`).
        public var attempts: Int
        /// How long a call's hold lasts if the proxy never commits or releases it (it was killed, say), in
        /// milliseconds; nil for Tollgate's limit (`limits.reservationTTLMs`).
        public var holdTTLMs: Int64?
        /// What to do with calls while Tollgate cannot be reached.
        public var whenUnavailable: ToolCallMeter.UnavailablePolicy
        /// The spool's SQLite file (`UsageSpool`).
        public var spoolPath: String
        /// Put each tool's price for this agent in `tools/list` answers (`meter.quote`).
        public var annotatePrices = false
        /// The product the server is (`--product`); nil: the customer's only subscription.
        public var product: String?

        public init(
            tollgate: String, token: String, command: [String], spoolPath: String, attempts: Int = 4,
            holdTTLMs: Int64? = nil, whenUnavailable: ToolCallMeter.UnavailablePolicy = .block
        ) {
            self.tollgate = tollgate
            self.token = token
            self.command = command
            self.spoolPath = spoolPath
            self.attempts = attempts
            self.holdTTLMs = holdTTLMs
            self.whenUnavailable = whenUnavailable
        }

        /// Where the spool is kept unless `--spool` says otherwise: `$XDG_STATE_HOME/tollgate/mcp-spool.sqlite`,
        /// else `~/.local/state/tollgate/mcp-spool.sqlite`.
        public static func defaultSpoolPath(environment: [String: String]) -> String {
            let state =
                environment["XDG_STATE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
                ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.local/state")
            return state + "/tollgate/mcp-spool.sqlite"
        }
    }

    let options: Options
    let logger: Logger

    public init(options: Options, logger: Logger = Logger(label: "tollgate-mcp-proxy")) {
        self.options = options
        self.logger = logger
    }

    /// Runs until the client closes stdin or the server exits, and returns the server's exit status; or until
    /// SIGTERM or SIGINT, and returns 128 + the signal. Either way the calls are settled and the session closed.
    public func run() async throws -> Int32 {
        let spool: UsageSpool
        do { spool = try UsageSpool(path: options.spoolPath) } catch {
            throw ProxyError("cannot open the spool at \(options.spoolPath) (\(error)); name another with --spool")
        }
        let link = TollgateLink(address: options.tollgate, token: options.token, product: options.product)
        let retry = RetryPolicy(attempts: options.attempts)
        let run = Identifiers.randomString(count: 16)
        let sessionId = "mcp-\(run)"

        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        child.arguments = options.command
        let toChild = Pipe()
        let fromChild = Pipe()
        child.standardInput = toChild
        child.standardOutput = fromChild
        child.standardError = FileHandle.standardError
        try child.run()
        logger.info("started the MCP server", metadata: ["command": "\(options.command.first ?? "")"])

        let settlement = Settlement(link: link, spool: spool, token: options.token, retry: retry, logger: logger)
        let core = ProxyCore(
            meter: ToolCallMeter(
                keyPrefix: "mcp-\(run)", whenUnavailable: options.whenUnavailable,
                annotatePrices: options.annotatePrices),
            settlement: settlement, sessionId: sessionId, holdTTLMs: options.holdTTLMs, retry: retry,
            toServer: LineWriter(fd: toChild.fileHandleForWriting.fileDescriptor),
            toClient: LineWriter(fd: FileHandle.standardOutput.fileDescriptor), logger: logger)
        do { _ = try await link.connection().openSession(sessionId, retry: retry) } catch {
            // A session opens with the first call that gets through.
            logger.warning(
                options.whenUnavailable == .block
                    ? "Tollgate cannot be reached; tool calls are refused until it can"
                    : "Tollgate cannot be reached; tool calls run unmetered and their usage is spooled until it can",
                metadata: ["error": "\(error)"])
        }
        // What earlier runs left in the spool goes first.
        settlement.drainSoon()

        // Trapped only now: a signal ignored while the child starts would be ignored by the child too.
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        let (stops, stop) = AsyncStream.makeStream(of: UnixSignal.self)
        let watcher = Task {
            var told = false
            for await signal in signals {
                // A second signal while the proxy settles: it goes at once. What is not settled by then waits in
                // the spool or, for a hold, expires.
                if told { exit(128 + signal.rawValue) }
                told = true
                stop.yield(signal)
            }
        }
        defer { watcher.cancel() }
        let stoppedBy = await withTaskGroup(of: UnixSignal?.self) { group -> UnixSignal? in
            group.addTask {
                for await line in LineReader.lines(of: FileHandle.standardInput.fileDescriptor) {
                    await core.fromClient(MCPMessage(bytes: line))
                }
                // The client is gone: the server's stdin closes, which ends it.
                try? toChild.fileHandleForWriting.close()
                return nil
            }
            group.addTask {
                for await line in LineReader.lines(of: fromChild.fileHandleForReading.fileDescriptor) {
                    await core.fromServer(MCPMessage(bytes: line))
                }
                return nil
            }
            group.addTask {
                for await signal in stops { return signal }
                return nil
            }
            // Once a second, the holds of tasks whose TTL has passed go back.
            let ticker = Task {
                while (try? await Task.sleep(for: .seconds(1))) != nil { await core.expireTasks() }
            }
            defer { ticker.cancel() }
            var relaying = 2
            while let finished = await group.next() {
                if let signal = finished {
                    // Told to stop (by the client that gave up waiting, or by a person): the server is stopped
                    // too, and the proxy settles and closes its session before it goes, as when the client ends.
                    logger.notice("stopping", metadata: ["signal": "\(signal)"])
                    if child.isRunning { kill(child.processIdentifier, SIGTERM) }
                    group.cancelAll()
                    return signal
                }
                relaying -= 1
                if relaying == 0 { group.cancelAll() }
            }
            return nil
        }
        if let stoppedBy {
            await core.finish()
            await link.close()
            return 128 + stoppedBy.rawValue
        }
        child.waitUntilExit()
        await core.finish()
        await link.close()
        return child.terminationStatus
    }
}

/// The shell around `ToolCallMeter` for one stdio connection: it feeds the meter messages and Tollgate's answers,
/// and carries out the actions the meter returns; what follows a call goes through its `Settlement`.
actor ProxyCore {
    private var meter: ToolCallMeter
    private let settlement: Settlement
    private let holdTTLMs: Int64?
    private let sessionId: String
    private let retry: RetryPolicy
    private let toServer: LineWriter
    private let toClient: LineWriter
    private let logger: Logger

    init(
        meter: ToolCallMeter, settlement: Settlement, sessionId: String, holdTTLMs: Int64?, retry: RetryPolicy,
        toServer: LineWriter, toClient: LineWriter, logger: Logger
    ) {
        self.meter = meter
        self.settlement = settlement
        self.holdTTLMs = holdTTLMs
        self.sessionId = sessionId
        self.retry = retry
        self.toServer = toServer
        self.toClient = toClient
        self.logger = logger
    }

    func fromClient(_ message: MCPMessage) { perform(meter.fromClient(message, at: Date())) }

    func fromServer(_ message: MCPMessage) { perform(meter.fromServer(message, at: Date())) }

    func expireTasks() { perform(meter.expireTasks(at: Date())) }

    /// Releases what is still held, then settles and closes the Tollgate session (see `Settlement.close`).
    func finish() async {
        perform(meter.ended())
        await settlement.close(sessionId: sessionId)
    }

    private func perform(_ actions: [ToolCallMeter.Action]) {
        for action in actions {
            switch action {
            case .toServer(let line): toServer.write(line)
            case .toClient(let line): toClient.write(line)
            case .authorize(let callId, let tool, let key):
                let (link, sessionId, retry, ttlMs) = (settlement.link, self.sessionId, self.retry, self.holdTTLMs)
                Task {
                    let answer = await ProxyCalls.authorize(
                        link: link, tool: tool, key: key, sessionId: sessionId, ttlMs: ttlMs, retry: retry)
                    self.perform(self.meter.holdAnswered(callId: callId, answer, at: Date()))
                }
            case .commit, .release, .spool: settlement.settle(action, sessionId: sessionId)
            case .quote(let listingId, let tools):
                let (link, sessionId, logger) = (settlement.link, self.sessionId, self.logger)
                Task {
                    let prices = await ProxyCalls.quote(link: link, tools: tools, sessionId: sessionId, logger: logger)
                    self.perform(self.meter.quoted(listingId: listingId, prices))
                }
            }
        }
    }
}

/// The proxy's two questions to Tollgate before it acts, and how their failures read.
package enum ProxyCalls {
    package enum HoldAnswer: Sendable {
        case held(reservationId: String)
        case refused(ToolCallMeter.Refusal)
        /// Tollgate could not be reached, or is not serving (`UNAVAILABLE` after every retry).
        case unavailable
    }

    /// - Parameter source: who holds the call, kept with it as an event: `proxy`, or `sdk` for the Swift wrapper.
    package static func authorize(
        link: TollgateLink, tool: String, key: String, sessionId: String, ttlMs: Int64?, source: String = "proxy",
        retry: RetryPolicy
    ) async -> HoldAnswer {
        do {
            let hold = try await link.connection().authorize(
                tool: tool, key: key, sessionId: sessionId, ttlMs: ttlMs, source: source, product: link.product,
                retry: retry)
            return .held(reservationId: hold.reservationId)
        } catch let error as RPCError where !error.retryable {
            return .refused(
                ToolCallMeter.Refusal(
                    reason: error.reason ?? "ERROR", message: error.message, hint: error.data?["hint"]?.stringValue,
                    details: error.data ?? .object([:])))
        } catch {
            return .unavailable
        }
    }

    /// Prices for a listing, asked once (a listing is not held back long for them); nil if Tollgate cannot quote.
    static func quote(link: TollgateLink, tools: [String], sessionId: String, logger: Logger) async -> PriceList? {
        do {
            return try await link.connection().quote(
                tools: tools, sessionId: sessionId, product: link.product, retry: RetryPolicy(attempts: 1))
        } catch {
            logger.warning("cannot quote the listed tools; listed without prices", metadata: ["error": "\(error)"])
            return nil
        }
    }
}

/// A reason the proxy cannot run, said plainly.
public struct ProxyError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
