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

        public init(
            tollgate: String, token: String, command: [String], attempts: Int = 4, holdTTLMs: Int64? = nil
        ) {
            self.tollgate = tollgate
            self.token = token
            self.command = command
            self.attempts = attempts
            self.holdTTLMs = holdTTLMs
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
            meter: ToolCallMeter(keyPrefix: "mcp-\(run)"), link: link, sessionId: sessionId,
            holdTTLMs: options.holdTTLMs,
            retry: RetryPolicy(attempts: options.attempts),
            toServer: LineWriter(fd: toChild.fileHandleForWriting.fileDescriptor),
            toClient: LineWriter(fd: FileHandle.standardOutput.fileDescriptor), logger: logger)
        do { _ = try await link.connection().openSession(sessionId, retry: retry) } catch {
            // Calls are refused until Tollgate answers (a session opens with the first call that gets through).
            logger.warning(
                "Tollgate cannot be reached; tool calls are refused until it can", metadata: ["error": "\(error)"])
        }

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
        _ = try? await link.connection().closeSession(sessionId, retry: retry)
        await link.close()
        return child.terminationStatus
    }
}

/// The shell around `ToolCallMeter`: it feeds the meter messages and Tollgate's answers, and carries out the
/// actions the meter returns.
actor ProxyCore {
    private var meter: ToolCallMeter
    private let link: TollgateLink
    private let holdTTLMs: Int64?
    private let sessionId: String
    private let retry: RetryPolicy
    private let toServer: LineWriter
    private let toClient: LineWriter
    private let logger: Logger
    /// Commits and releases still on their way to Tollgate: `finish` waits for them.
    private var settling: [UUID: Task<Void, Never>] = [:]

    init(
        meter: ToolCallMeter, link: TollgateLink, sessionId: String, holdTTLMs: Int64?, retry: RetryPolicy,
        toServer: LineWriter, toClient: LineWriter, logger: Logger
    ) {
        self.meter = meter
        self.link = link
        self.holdTTLMs = holdTTLMs
        self.sessionId = sessionId
        self.retry = retry
        self.toServer = toServer
        self.toClient = toClient
        self.logger = logger
    }

    func fromClient(_ message: MCPMessage) { perform(meter.fromClient(message)) }

    func fromServer(_ message: MCPMessage) { perform(meter.fromServer(message, at: Date())) }

    /// Releases what is still held and waits for every commit and release to reach Tollgate.
    func finish() async {
        perform(meter.ended())
        for task in settling.values { await task.value }
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
                    } catch let error as RPCError {
                        self.refused(
                            callId: callId,
                            ToolCallMeter.Refusal(
                                reason: error.reason ?? "ERROR", message: error.message,
                                hint: error.data?["hint"]?.stringValue, details: error.data ?? .object([:])))
                    } catch {
                        self.refused(
                            callId: callId,
                            ToolCallMeter.Refusal(
                                reason: "UNAVAILABLE",
                                message: "Tollgate cannot be reached, so the call was not run",
                                hint: "Try again shortly."))
                    }
                }
            case .commit(let reservationId, let usage):
                settle { connection, retry in
                    _ = try await connection.commit(
                        reservationId: reservationId,
                        usage: Usage(
                            inputTokens: usage.inputTokens, outputTokens: usage.outputTokens,
                            reasoningTokens: usage.reasoningTokens, durationMs: usage.durationMs,
                            status: usage.failed ? "FAILED" : "SUCCESS", providerCost: usage.providerCost),
                        retry: retry)
                }
            case .release(let reservationId):
                settle { connection, retry in try await connection.release(reservationId: reservationId, retry: retry) }
            }
        }
    }

    private func authorized(callId: String, reservationId: String) {
        perform(meter.authorized(callId: callId, reservationId: reservationId, at: Date()))
    }

    private func refused(callId: String, _ refusal: ToolCallMeter.Refusal) {
        perform(meter.refused(callId: callId, refusal))
    }

    /// Sends a commit or release to Tollgate beside the relay: the answer does not wait for it (the hold already
    /// made the call safe), and `finish` does.
    private func settle(_ body: @escaping @Sendable (TollgateConnection, RetryPolicy) async throws -> Void) {
        let id = UUID()
        let (link, retry, logger) = (self.link, self.retry, self.logger)
        settling[id] = Task {
            do { try await body(try await link.connection(), retry) } catch {
                logger.error("settling a metered call failed", metadata: ["error": "\(error)"])
            }
            self.settled(id)
        }
    }

    private func settled(_ id: UUID) { settling[id] = nil }
}
