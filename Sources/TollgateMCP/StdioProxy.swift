import Foundation
import Logging
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateWire

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

    /// Runs until the client closes stdin or the server exits; returns the server's exit status.
    public func run() async throws -> Int32 {
        let spool: UsageSpool
        do { spool = try UsageSpool(path: options.spoolPath) } catch {
            throw ProxyError("cannot open the spool at \(options.spoolPath) (\(error)); name another with --spool")
        }
        let link = TollgateLink(address: options.tollgate, token: options.token)
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

        let core = ProxyCore(
            meter: ToolCallMeter(
                keyPrefix: "mcp-\(run)", whenUnavailable: options.whenUnavailable,
                annotatePrices: options.annotatePrices), link: link,
            sessionId: sessionId, holdTTLMs: options.holdTTLMs, retry: RetryPolicy(attempts: options.attempts),
            spool: spool, credential: SpoolDelivery.credential(ofToken: options.token),
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
        await core.drainSoon()

        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await line in LineReader.lines(of: FileHandle.standardInput.fileDescriptor) {
                    await core.fromClient(MCPMessage(bytes: line))
                }
                // The client is gone: the server's stdin closes, which ends it.
                try? toChild.fileHandleForWriting.close()
            }
            group.addTask {
                for await line in LineReader.lines(of: fromChild.fileHandleForReading.fileDescriptor) {
                    await core.fromServer(MCPMessage(bytes: line))
                }
            }
            await group.waitForAll()
        }
        child.waitUntilExit()
        await core.finish()
        await link.close()
        return child.terminationStatus
    }
}

/// The shell around `ToolCallMeter`: it feeds the meter messages and Tollgate's answers, and carries out the
/// actions the meter returns. What Tollgate cannot take now goes to the spool, which is sent in the background.
actor ProxyCore {
    private var meter: ToolCallMeter
    private let link: TollgateLink
    private let holdTTLMs: Int64?
    private let sessionId: String
    private let retry: RetryPolicy
    private let spool: UsageSpool
    private let credential: String
    private let toServer: LineWriter
    private let toClient: LineWriter
    private let logger: Logger
    /// Commits and releases still on their way to Tollgate: `finish` waits for them.
    private var settling: [UUID: Task<Void, Never>] = [:]
    /// The spool being sent, and whether more was spooled since it started.
    private var draining: Task<Void, Never>?
    private var spooledSinceDrainStarted = false

    init(
        meter: ToolCallMeter, link: TollgateLink, sessionId: String, holdTTLMs: Int64?, retry: RetryPolicy,
        spool: UsageSpool, credential: String, toServer: LineWriter, toClient: LineWriter, logger: Logger
    ) {
        self.meter = meter
        self.link = link
        self.holdTTLMs = holdTTLMs
        self.sessionId = sessionId
        self.retry = retry
        self.spool = spool
        self.credential = credential
        self.toServer = toServer
        self.toClient = toClient
        self.logger = logger
    }

    func fromClient(_ message: MCPMessage) { perform(meter.fromClient(message, at: Date())) }

    func fromServer(_ message: MCPMessage) { perform(meter.fromServer(message, at: Date())) }

    /// Releases what is still held, waits for every commit and release, sends what the spool holds, and closes
    /// the Tollgate session — or, if Tollgate cannot take all of it now, leaves the rest (and the close, after it)
    /// in the spool for the next run.
    func finish() async {
        perform(meter.ended())
        while let task = settling.values.first {
            await task.value
        }
        draining?.cancel()
        await draining?.value
        draining = nil
        let report = await drainOnce()
        let close = UsageSpool.Entry(kind: .close, credential: credential, sessionId: sessionId, key: "\(sessionId)-close")
        if report?.stopped == false {
            do {
                _ = try await link.connection().closeSession(sessionId, key: close.key, retry: retry)
                return
            } catch where SpoolDelivery.verdict(for: close, after: error) != .later {
                return  // closed already, or never opened
            } catch {}
        }
        do {
            try spool.add(close)
            let waiting = try spool.pendingCount(credential: credential)
            logger.warning(
                "Tollgate cannot take the metered usage now; it waits in the spool, and the next proxy run sends it",
                metadata: ["entries": "\(waiting)", "spool": "\(spool.path)"])
        } catch {
            logger.error("cannot spool the session's close", metadata: ["session": "\(sessionId)", "error": "\(error)"])
        }
    }

    private func perform(_ actions: [ToolCallMeter.Action]) {
        for action in actions {
            switch action {
            case .toServer(let line): toServer.write(line)
            case .toClient(let line): toClient.write(line)
            case .authorize(let callId, let tool, let key):
                let (link, sessionId, retry, ttlMs) = (self.link, self.sessionId, self.retry, self.holdTTLMs)
                Task {
                    do {
                        let hold = try await link.connection().authorize(
                            tool: tool, key: key, sessionId: sessionId, ttlMs: ttlMs, retry: retry)
                        self.authorized(callId: callId, reservationId: hold.reservationId)
                    } catch let error as RPCError where !error.retryable {
                        self.refused(
                            callId: callId,
                            ToolCallMeter.Refusal(
                                reason: error.reason ?? "ERROR", message: error.message,
                                hint: error.data?["hint"]?.stringValue, details: error.data ?? .object([:])))
                    } catch {
                        // Not reachable, or not serving (`UNAVAILABLE` after every retry).
                        self.unavailable(callId: callId)
                    }
                }
            case .commit(let reservationId, let tool, let key, let usage):
                let id = UUID()
                let (link, retry) = (self.link, self.retry)
                settling[id] = Task {
                    do {
                        _ = try await link.connection().commit(
                            reservationId: reservationId, usage: Self.usage(usage), retry: retry)
                    } catch {
                        // Never dropped: the spool sends it once Tollgate can take it (or records it, if the hold
                        // is gone by then).
                        self.spool(
                            UsageSpool.Entry(
                                kind: .commit, credential: self.credential, sessionId: self.sessionId, tool: tool,
                                key: key, reservationId: reservationId,
                                usage: Self.usage(usage).json),
                            because: error)
                    }
                    self.settled(id)
                }
            case .release(let reservationId):
                let id = UUID()
                let (link, retry, logger) = (self.link, self.retry, self.logger)
                settling[id] = Task {
                    do { try await link.connection().release(reservationId: reservationId, retry: retry) } catch {
                        // The hold expires on its own (`--hold-ttl-ms`).
                        logger.warning(
                            "cannot release a hold; it expires on its own",
                            metadata: ["reservation": "\(reservationId)", "error": "\(error)"])
                    }
                    self.settled(id)
                }
            case .quote(let listingId, let tools):
                let (link, sessionId, logger) = (self.link, self.sessionId, self.logger)
                Task {
                    do {
                        // Once: a listing is not held back long for its prices.
                        let list = try await link.connection().quote(
                            tools: tools, sessionId: sessionId, retry: RetryPolicy(attempts: 1))
                        self.priced(
                            listingId: listingId, currency: list.currency,
                            prices: list.prices.mapValues(\.decimalString))
                    } catch {
                        logger.warning("cannot quote the listed tools; listed without prices", metadata: ["error": "\(error)"])
                        self.notPriced(listingId: listingId)
                    }
                }
            case .spool(let tool, let key, let usage):
                spool(
                    UsageSpool.Entry(
                        kind: .record, credential: credential, sessionId: sessionId, tool: tool, key: key,
                        usage: Self.usage(usage).json),
                    because: nil)
            }
        }
    }

    static func usage(_ usage: ToolCallMeter.CallUsage) -> Usage {
        Usage(
            inputTokens: usage.inputTokens, outputTokens: usage.outputTokens, reasoningTokens: usage.reasoningTokens,
            durationMs: usage.durationMs, status: usage.failed ? "FAILED" : "SUCCESS", providerCost: usage.providerCost)
    }

    private func authorized(callId: String, reservationId: String) {
        perform(meter.authorized(callId: callId, reservationId: reservationId, at: Date()))
    }

    private func refused(callId: String, _ refusal: ToolCallMeter.Refusal) {
        perform(meter.refused(callId: callId, refusal))
    }

    private func priced(listingId: String, currency: String, prices: [String: String]) {
        perform(meter.priced(listingId: listingId, currency: currency, prices: prices))
    }

    private func notPriced(listingId: String) { perform(meter.notPriced(listingId: listingId)) }

    private func unavailable(callId: String) { perform(meter.unavailable(callId: callId, at: Date())) }

    private func settled(_ id: UUID) { settling[id] = nil }

    /// Writes an entry to the spool (on disk when this returns) and has it sent.
    private func spool(_ entry: UsageSpool.Entry, because error: (any Error)?) {
        do {
            try spool.add(entry)
            logger.notice(
                "spooled metered usage until Tollgate can take it",
                metadata: ["kind": "\(entry.kind.rawValue)", "key": "\(entry.key)", "error": "\(error.map { "\($0)" } ?? "")"])
        } catch {
            // The one place usage can be lost: say everything needed to charge it by hand.
            logger.critical(
                "cannot write to the spool; this usage is not recorded anywhere else",
                metadata: [
                    "spool": "\(spool.path)", "kind": "\(entry.kind.rawValue)", "tool": "\(entry.tool ?? "")",
                    "key": "\(entry.key)", "session": "\(entry.sessionId ?? "")",
                    "usage": "\(entry.usage.map(JSONCodec.string) ?? "")", "error": "\(error)",
                ])
        }
        drainSoon()
    }

    /// Sends the spool in the background until it is empty, waiting longer each time Tollgate cannot take it.
    func drainSoon() {
        guard draining == nil else {
            spooledSinceDrainStarted = true
            return
        }
        draining = Task {
            var waitMs = 250
            while !Task.isCancelled {
                self.spooledSinceDrainStarted = false
                guard let report = await self.drainOnce() else { break }
                if report.stopped {
                    try? await Task.sleep(for: .milliseconds(waitMs))
                    waitMs = min(waitMs * 2, 5000)
                } else if !self.spooledSinceDrainStarted {
                    break
                }
            }
            self.draining = nil
        }
    }

    /// One pass over this credential's pending entries; nil when the spool itself failed.
    private func drainOnce() async -> SpoolDelivery.Report? {
        do {
            let link = self.link
            let report = try await SpoolDelivery.drain(spool, credential: credential) { try await link.connection() }
            if report.delivered > 0 || report.refused > 0 {
                logger.notice(
                    "sent spooled usage to Tollgate",
                    metadata: ["delivered": "\(report.delivered)", "refused": "\(report.refused)"])
            }
            if report.refused > 0 {
                logger.error(
                    "Tollgate refused spooled usage for good; it stays in the spool with the reason",
                    metadata: ["refused": "\(report.refused)", "spool": "\(spool.path)"])
            }
            return report
        } catch {
            logger.error("cannot read or update the spool", metadata: ["spool": "\(spool.path)", "error": "\(error)"])
            return nil
        }
    }
}

/// A reason the proxy cannot run, said plainly.
public struct ProxyError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
