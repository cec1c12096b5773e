import Foundation
import Logging
import MCP
import TollgateMCPSwift

// An MCP server built on the official Swift SDK, metered by Tollgate with one call: its CallTool handler is
// wrapped by `ToolMetering.meter`. Speaks MCP on stdin/stdout; logs go to stderr.
//
//     TOLLGATE_TOKEN=AGT-… TOLLGATE_ADDRESS=127.0.0.1:7420 MeteredSwiftServer
//
// Tools: `lookup {query}` answers at once; `summarize {text}` reports what it "used" in
// `_meta["dev.tollgate/usage"]` (tokens, provider cost, model); `fail` answers with a tool error; `slow {seconds}`
// takes its time (for cancelling). TOLLGATE_SPOOL names the spool file (default: the proxy's).

LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = .warning
    return handler
}
let environment = ProcessInfo.processInfo.environment
guard let token = environment["TOLLGATE_TOKEN"], !token.isEmpty else {
    FileHandle.standardError.write(Data("set TOLLGATE_TOKEN to the agent's AGT- token\n".utf8))
    exit(2)
}
let metering = try ToolMetering(
    options: .init(
        tollgate: environment["TOLLGATE_ADDRESS"] ?? "127.0.0.1:7420", token: token,
        spoolPath: environment["TOLLGATE_SPOOL"].flatMap { $0.isEmpty ? nil : $0 }))

let server = Server(
    name: "metered-swift-server", version: "1.0.0", capabilities: .init(tools: .init(listChanged: false)))

@Sendable func text(_ string: String) -> Tool.Content { .text(text: string, annotations: nil, _meta: nil) }

await server.withMethodHandler(ListTools.self) { _ in
    ListTools.Result(tools: [
        Tool(
            name: "lookup", description: "Looks a query up.",
            inputSchema: ["type": "object", "properties": ["query": ["type": "string"]]]),
        Tool(
            name: "summarize", description: "Summarizes a text, with a model.",
            inputSchema: ["type": "object", "properties": ["text": ["type": "string"]]]),
        Tool(name: "fail", description: "Always fails.", inputSchema: ["type": "object"]),
        Tool(
            name: "slow", description: "Takes its time.",
            inputSchema: ["type": "object", "properties": ["seconds": ["type": "number"]]]),
    ])
}

await server.withMethodHandler(
    CallTool.self,
    handler: metering.meter { params in
        switch params.name {
        case "lookup":
            return CallTool.Result(content: [text("found: \(params.arguments?["query"]?.stringValue ?? "")")])
        case "summarize":
            let input = params.arguments?["text"]?.stringValue ?? ""
            let usage: Value = [
                "inputTokens": .int(input.count), "outputTokens": 12, "providerCost": "0.0003",
                "model": "example-model-1",
            ]
            return CallTool.Result(
                content: [text("summary of \(input.count) characters")],
                _meta: Metadata(additionalFields: ["dev.tollgate/usage": usage]))
        case "fail":
            return CallTool.Result(content: [text("this tool always fails")], isError: true)
        case "slow":
            let seconds = params.arguments?["seconds"]?.doubleValue ?? 1
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            return CallTool.Result(content: [text("waited \(seconds) s")])
        default:
            return CallTool.Result(content: [text("no tool \(params.name)")], isError: true)
        }
    })

try await server.start(transport: StdioTransport())
await server.waitUntilCompleted()
await metering.finish()
