import ArgumentParser
import Foundation
import Logging
import TollgateMCP

extension ToolCallMeter.UnavailablePolicy: ExpressibleByArgument {}

/// `tollgate-mcp-proxy`: meters an unmodified MCP server. On stdio it starts the server and speaks MCP on its own
/// stdin and stdout; with `--upstream` it serves Streamable HTTP in front of a server that does. Either way it
/// relays every message unchanged and has Tollgate hold, charge or refuse every `tools/call`.
@main
struct TollgateMCPProxy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tollgate-mcp-proxy",
        abstract: "Meter every tools/call of an unmodified MCP server with Tollgate.",
        discussion: """
            stdio:  tollgate-mcp-proxy [--tollgate 127.0.0.1:7420] -- COMMAND ARGS…
                    The agent's token comes from TOLLGATE_TOKEN or --token-file; it is never logged.
            HTTP:   tollgate-mcp-proxy --upstream http://HOST:PORT/mcp --listen 127.0.0.1:PORT
                    Each agent sends its own token: Authorization: Bearer AGT-…
            Logs go to stderr.
            """)

    @Option(name: .long, help: "Tollgate's host:port (env TOLLGATE_ADDRESS; default 127.0.0.1:7420).")
    var tollgate =
        ProcessInfo.processInfo.environment["TOLLGATE_ADDRESS"].flatMap { $0.isEmpty ? nil : $0 }
        ?? "127.0.0.1:7420"

    @Option(name: .long, help: "A file holding the agent's AGT- token (else TOLLGATE_TOKEN).")
    var tokenFile: String?

    /// How long a call's hold lasts if the proxy dies before committing it.
    @Option(name: .long, help: "Milliseconds a call's hold lasts if the proxy dies first (default: Tollgate's).")
    var holdTtlMs: Int64?

    @Option(
        name: .long,
        help: """
            While Tollgate cannot be reached: block (answer each call with a tool error, without running it) or \
            allow (run it and spool its usage until Tollgate is back; caps cannot hold meanwhile).
            """)
    var onUnavailable: ToolCallMeter.UnavailablePolicy = .block

    @Option(
        name: .long,
        help: "The spool's SQLite file (default $XDG_STATE_HOME/tollgate/mcp-spool.sqlite, else ~/.local/state/…).")
    var spool: String?

    @Flag(
        name: .long, help: "Put each tool's price for this agent in tools/list answers (_meta \"dev.tollgate/price\").")
    var annotatePrices = false

    @Option(
        name: .long,
        help: "The product this MCP server is (its id or name): calls are priced by the customer's subscription to it.")
    var product: String?

    @Option(name: .long, help: "The upstream MCP server's Streamable HTTP endpoint: serve HTTP in front of it.")
    var upstream: String?

    @Option(name: .long, help: "Where to serve Streamable HTTP, host:port (with --upstream).")
    var listen: String?

    @Option(name: .long, help: "A header sent upstream with every request, \"Name: value\" (repeatable).")
    var upstreamHeader: [String] = []

    @Option(
        name: .long,
        help: "HTTP: milliseconds an MCP session, or an agent's own session (2026-07-28), may go unused before it ends."
    )
    var sessionIdleMs: Int64 = 900_000

    @Argument(parsing: .postTerminator, help: "The MCP server to start, and its arguments.")
    var command: [String] = []

    func run() async throws {
        // A signal mask is inherited: started from a thread that blocks SIGTERM (a thread pool's, say), the proxy
        // would never see the signal that stops it cleanly.
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        sigaddset(&stopSignals, SIGTERM)
        sigaddset(&stopSignals, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &stopSignals, nil)
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .warning
            return handler
        }
        let environment = ProcessInfo.processInfo.environment
        let spoolPath = spool ?? StdioProxy.Options.defaultSpoolPath(environment: environment)
        if let upstream {
            guard command.isEmpty else { throw ValidationError("--upstream serves HTTP: name no command after --") }
            guard let listen else { throw ValidationError("--upstream needs --listen host:port") }
            guard sessionIdleMs >= 1000 else { throw ValidationError("--session-idle-ms is at least 1000") }
            var options = HTTPProxy.Options(
                listen: listen, upstream: upstream, upstreamHeaders: upstreamHeader, tollgate: tollgate,
                spoolPath: spoolPath, holdTTLMs: holdTtlMs, whenUnavailable: onUnavailable,
                annotatePrices: annotatePrices, sessionIdleMs: sessionIdleMs)
            options.product = product
            do { try await HTTPProxy(options: options).run() } catch let error as ProxyError {
                throw ValidationError(error.description)
            }
            return
        }
        guard listen == nil else { throw ValidationError("--listen goes with --upstream") }
        let token: String
        if let tokenFile {
            guard let text = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
                throw ValidationError("cannot read --token-file \(tokenFile)")
            }
            token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        } else if let fromEnvironment = ProcessInfo.processInfo.environment["TOLLGATE_TOKEN"], !fromEnvironment.isEmpty
        {
            token = fromEnvironment
        } else {
            throw ValidationError("no agent token: set TOLLGATE_TOKEN or pass --token-file")
        }
        guard !command.isEmpty else { throw ValidationError("name the MCP server to start after --") }
        var options = StdioProxy.Options(
            tollgate: tollgate, token: token, command: command, spoolPath: spoolPath,
            holdTTLMs: holdTtlMs, whenUnavailable: onUnavailable)
        options.annotatePrices = annotatePrices
        options.product = product
        let status: Int32
        do { status = try await StdioProxy(options: options).run() } catch let error as ProxyError {
            throw ValidationError(error.description)
        }
        throw ExitCode(status)
    }
}
