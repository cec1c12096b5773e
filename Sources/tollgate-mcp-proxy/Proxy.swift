import ArgumentParser
import Foundation
import Logging
import TollgateMCP

extension ToolCallMeter.UnavailablePolicy: ExpressibleByArgument {}

/// `tollgate-mcp-proxy`: meters an unmodified MCP server. It starts the server, speaks MCP on its own stdin and
/// stdout, relays every message unchanged, and has Tollgate hold, charge or refuse every `tools/call`.
@main
struct TollgateMCPProxy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tollgate-mcp-proxy",
        abstract: "Meter every tools/call of an unmodified MCP server with Tollgate.",
        discussion: """
            tollgate-mcp-proxy [--tollgate 127.0.0.1:7420] -- COMMAND ARGS…
            The agent's token comes from TOLLGATE_TOKEN or --token-file; it is never logged. Logs go to stderr.
            """)

    @Option(name: .long, help: "Tollgate's host:port (env TOLLGATE_ADDRESS; default 127.0.0.1:7420).")
    var tollgate = ProcessInfo.processInfo.environment["TOLLGATE_ADDRESS"].flatMap { $0.isEmpty ? nil : $0 }
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

    @Flag(name: .long, help: "Put each tool's price for this agent in tools/list answers (_meta \"dev.tollgate/price\").")
    var annotatePrices = false

    @Argument(parsing: .postTerminator, help: "The MCP server to start, and its arguments.")
    var command: [String]

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .warning
            return handler
        }
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
        let environment = ProcessInfo.processInfo.environment
        var options = StdioProxy.Options(
            tollgate: tollgate, token: token, command: command,
            spoolPath: spool ?? StdioProxy.Options.defaultSpoolPath(environment: environment),
            holdTTLMs: holdTtlMs, whenUnavailable: onUnavailable)
        options.annotatePrices = annotatePrices
        let status: Int32
        do { status = try await StdioProxy(options: options).run() } catch let error as ProxyError {
            throw ValidationError(error.description)
        }
        throw ExitCode(status)
    }
}
