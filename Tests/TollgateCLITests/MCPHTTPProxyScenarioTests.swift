import Foundation
import Testing
import TollgateClient
import TollgateJSON
import TollgateTesting

/// `tollgate-mcp-proxy --upstream … --listen …`: the proxy in front of a Streamable HTTP MCP server built on the
/// official SDK (`Integration/MCP/http_server.py`), driven by the official Python client over HTTP in both
/// protocol eras. Needs `TOLLGATE_TEST_MCP_PYTHON` (see `MCPProxyScenarioTests`); skipped without it.
/// One test at a time: each starts two processes, one a Python server that imports for seconds.
@Suite(.enabled(if: mcpPython != nil, "set TOLLGATE_TEST_MCP_PYTHON to run the MCP scenarios"), .serialized)
struct MCPHTTPProxyScenarioTests {
    static let python = mcpPython!
    static func integration(_ file: String) -> String {
        Products.repository.appendingPathComponent("Integration/MCP/\(file)").path
    }

    /// An upstream MCP server (`http_server.py`) and a proxy in front of it, started.
    struct ProxyPair {
        let upstream: ServerProcess
        let proxy: ServerProcess
        /// The proxy's endpoint, and the upstream's (to compare with a direct connection).
        let url: String
        let upstreamURL: String
        let log: URL

        static func launch(tollgate: String, proxyArguments: [String], upstreamArguments: [String]) async throws
            -> ProxyPair
        {
            let directory = try temporaryDirectory()
            let upstreamPort = try freePort()
            let upstream = try await ServerProcess.launch(
                python, [integration("http_server.py"), String(upstreamPort)] + upstreamArguments,
                port: upstreamPort, log: directory.appendingPathComponent("upstream.log"))
            let proxyPort = try freePort()
            let log = directory.appendingPathComponent("proxy.log")
            do {
                let proxy = try await ServerProcess.launch(
                    Products.path("tollgate-mcp-proxy"),
                    [
                        "--upstream", "http://127.0.0.1:\(upstreamPort)/mcp", "--listen", "127.0.0.1:\(proxyPort)",
                        "--tollgate", tollgate, "--spool", directory.appendingPathComponent("spool.sqlite").path,
                        "--upstream-header", "X-Upstream-Key: k-123",
                    ] + proxyArguments, port: proxyPort, log: log)
                return ProxyPair(
                    upstream: upstream, proxy: proxy, url: "http://127.0.0.1:\(proxyPort)/mcp",
                    upstreamURL: "http://127.0.0.1:\(upstreamPort)/mcp", log: log)
            } catch {
                _ = await upstream.stop(with: SIGKILL)
                throw error
            }
        }
    }

    /// An upstream MCP server and a proxy in front of it, both stopped when `body` ends.
    /// `body` gets the proxy's URL, the upstream's (to compare with a direct connection) and the proxy's log.
    static func withProxy<T>(
        tollgate: String, proxyArguments: [String] = [], upstreamArguments: [String] = [],
        _ body: (_ url: String, _ upstream: String, _ log: URL) async throws -> T
    ) async throws -> T {
        let pair = try await ProxyPair.launch(
            tollgate: tollgate, proxyArguments: proxyArguments, upstreamArguments: upstreamArguments)
        // The upstream is stopped with SIGKILL: children of the test process inherit its blocked signals, and
        // Python never unblocks SIGTERM. The proxy handles SIGTERM itself (its graceful shutdown is under test).
        do {
            let result = try await body(pair.url, pair.upstreamURL, pair.log)
            let stopped = await pair.proxy.stop()
            #expect(stopped.status == 0, "the proxy stops cleanly on SIGTERM")
            _ = await pair.upstream.stop(with: SIGKILL)
            return result
        } catch {
            _ = await pair.proxy.stop(with: SIGKILL)
            _ = await pair.upstream.stop(with: SIGKILL)
            throw error
        }
    }

    static func scenario(_ url: String, mode: String, calls: Int, token: String) async throws -> [JSONValue] {
        let result = try await run(
            python, [integration("http_scenario.py"), url, mode, String(calls)],
            environment: ["TOLLGATE_TOKEN": token], timeoutSeconds: 120)
        #expect(result.status == 0, "\(result.error)")
        return result.output.split(separator: "\n").compactMap { try? JSONCodec.parse(Array($0.utf8)) }
    }

    @Test func bothEras_areMeteredPerSession_andTheCredentialStaysWithTheProxy() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            try await Self.withProxy(tollgate: server.address) { url, _, log in
                for mode in ["legacy", "2026-07-28"] {
                    let lines = try await Self.scenario(url, mode: mode, calls: 2, token: world.agentToken)
                    #expect(lines.first?["tools"] == ["echo", "headers", "slow"], "\(mode): \(lines)")
                    let echoes = lines.filter { $0["tool"] == "echo" }
                    #expect(echoes.count == 2 && echoes.allSatisfy { $0["isError"] == false }, "\(mode): \(lines)")
                    // The upstream saw the proxy's own header, and never the agent's credential.
                    let seen = lines.first { $0["tool"] == "headers" }?["text"]?.stringValue ?? ""
                    #expect(!seen.contains("authorization") && seen.hasSuffix("x-upstream-key=k-123"), "\(seen)")
                    // No credential, or a bad one: 401 with a challenge.
                    let refused = lines.filter { $0["credential"] != nil }
                    #expect(refused.count == 2 && refused.allSatisfy { $0["status"] == 401 })
                    #expect(refused.first?["wwwAuthenticate"] == #"Bearer realm="tollgate-mcp-proxy""#)
                    #expect(
                        refused.last?["wwwAuthenticate"]?.stringValue?.contains(#"error="invalid_token""#) == true)
                }
                let proxyLog = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                #expect(!proxyLog.contains(world.agentToken), "the token never appears in a log")
            }
            let usage = try await op.call("usage.summary", ["groupBy": ["session", "tool"]])
            var bySession: [String: Int64] = [:]
            for row in usage["rows"]?.arrayValue ?? [] {
                bySession[row["session"]?.stringValue ?? "", default: 0] += row["calls"]?.int64Value ?? 0
            }
            // 3 calls in each era (2 echo, 1 headers), each era in a Tollgate session of its own.
            #expect(usage["total"]?["calls"] == 6 && bySession.values.sorted() == [3, 3], "\(usage)")
            #expect(bySession.keys.allSatisfy { $0.hasPrefix("mcp-") })
            // The handshake-era session was closed when the client ended it (DELETE); the proxy's shutdown
            // closed the 2026-07-28 one.
            let sessions = try await op.call("sessions.list", ["state": "all"])["sessions"]?.arrayValue ?? []
            let metered = sessions.filter { bySession[$0["sessionId"]?.stringValue ?? ""] != nil }
            #expect(metered.count == 2 && metered.allSatisfy { $0["state"] == "CLOSED" }, "\(sessions)")
        }
    }

    /// 2026-07-28 has no MCP sessions: a credential's calls share a Tollgate session that the proxy closes once it
    /// has been idle for `--session-idle-ms` — while the proxy keeps running — and the next call opens another.
    @Test func anIdleCredentialSession_isClosed_andTheNextCallOpensAnother() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            func states() async throws -> [String: String] {
                let sessions = try await op.call("sessions.list", ["state": "all"])["sessions"]?.arrayValue ?? []
                return Dictionary(
                    sessions.map { ($0["sessionId"]?.stringValue ?? "", $0["state"]?.stringValue ?? "") },
                    uniquingKeysWith: { $1 })
            }
            try await Self.withProxy(tollgate: server.address, proxyArguments: ["--session-idle-ms", "1000"]) {
                url, _, _ in
                _ = try await Self.scenario(url, mode: "2026-07-28", calls: 1, token: world.agentToken)
                var seen = try await states()
                for _ in 0..<200 where seen.values.contains("ACTIVE") || seen.isEmpty {
                    try await Task.sleep(for: .milliseconds(50))
                    seen = try await states()
                }
                #expect(seen.count == 1 && seen.values.allSatisfy { $0 == "CLOSED" }, "\(seen)")
                _ = try await Self.scenario(url, mode: "2026-07-28", calls: 1, token: world.agentToken)
                #expect(try await states().count == 2)
            }
            #expect(try await op.call("usage.summary")["total"]?["calls"] == 4)
        }
    }

    @Test func aCapRefusal_isAToolResult_andPricesShowInTheListing() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            _ = try await op.call(
                "caps.set", ["scope": "agent", "scopeId": .string(world.agentId), "limit": "0.003", "period": "day"])
            try await Self.withProxy(tollgate: server.address, proxyArguments: ["--annotate-prices"]) { url, _, _ in
                let lines = try await Self.scenario(url, mode: "legacy", calls: 2, token: world.agentToken)
                #expect(
                    lines.first?["meta"]?["echo"]?["dev.tollgate/price"]
                        == ["amount": "0.002", "currency": "USD", "unit": "call"], "\(lines)")
                let echoes = lines.filter { $0["tool"] == "echo" }
                #expect(echoes.first?["isError"] == false)
                #expect(echoes.last?["isError"] == true, "\(lines)")
                #expect(echoes.last?["text"]?.stringValue?.contains("BUDGET_EXCEEDED") == true)
                #expect(
                    echoes.last?["structuredContent"]?["dev.tollgate/refusal"]?["reason"] == "BUDGET_EXCEEDED")
            }
            #expect(try await op.call("usage.summary")["total"]?["calls"] == 1)
        }
    }

    /// Every message but a `tools/call` reaches the client as the upstream sent it: for each era, and for an
    /// upstream that answers with SSE streams and one that answers with JSON, what a client receives through the
    /// proxy is what it receives directly (the tools/call's result included, since nothing was refused).
    @Test(arguments: [[], ["--json"]])
    func aTranscriptThroughTheProxy_isTheDirectOne(upstreamArguments: [String]) async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            try await Self.withProxy(tollgate: server.address, upstreamArguments: upstreamArguments) {
                proxy, upstream, _ in
                for mode in ["legacy", "2026-07-28"] {
                    var transcripts: [String] = []
                    for url in [upstream, proxy] {
                        let result = try await run(
                            Self.python, [Self.integration("http_transcript_scenario.py"), url, mode],
                            environment: ["TOLLGATE_TOKEN": world.agentToken], timeoutSeconds: 60)
                        #expect(result.status == 0, "\(result.error)")
                        transcripts.append(result.output)
                    }
                    #expect(transcripts[0].split(separator: "\n").count >= 3, "\(mode): \(transcripts[0])")
                    #expect(transcripts[0] == transcripts[1], "\(mode) \(upstreamArguments)")
                }
            }
            let op = try await server.connect(token: world.operatorToken)
            #expect(try await op.call("usage.summary")["total"]?["calls"] == 2, "one tools/call per era, proxied")
        }
    }

    /// Streamable HTTP has no other way for a client to give up on a call than to close its stream: the proxy takes
    /// it as a cancellation, gives the hold back at once (not when the upstream finishes) and charges nothing.
    @Test func closingACallsStream_releasesItsHold() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let op = try await capAgentAtOnePerDay(world, on: server)
            try await Self.withProxy(tollgate: server.address) { url, _, log in
                let scenario = Task {
                    try await run(
                        Self.python, [Self.integration("http_cancel_scenario.py"), url],
                        environment: ["TOLLGATE_TOKEN": world.agentToken, "SCENARIO_LINGER_SECONDS": "8"],
                        timeoutSeconds: 60)
                }
                // The hold is taken while the call runs, then given back once the stream is closed, well before
                // the upstream's 20 s are over.
                var spent: [JSONValue] = []
                for _ in 0..<200 {
                    let caps = try await op.call("caps.list")["caps"]?.arrayValue ?? []
                    spent.append(caps.first?["spent"] ?? .null)
                    if spent.contains("0.002"), spent.last == "0" { break }
                    try await Task.sleep(for: .milliseconds(50))
                }
                #expect(spent.contains("0.002") && spent.last == "0", "held, then released: \(spent)")
                // Released by the stream's end, not by the end of the MCP session (the client's DELETE, later).
                let upstreamLog = log.deletingLastPathComponent().appendingPathComponent("upstream.log")
                var seen = (try? String(contentsOf: upstreamLog, encoding: .utf8)) ?? ""
                #expect(!seen.contains("DELETE"))
                for _ in 0..<100 where !seen.contains("slow: cancelled") {
                    try await Task.sleep(for: .milliseconds(50))
                    seen = (try? String(contentsOf: upstreamLog, encoding: .utf8)) ?? ""
                }
                // And the upstream was told: its tool was cancelled, not left to run.
                #expect(seen.contains("slow: cancelled"), "\(seen)")
                let result = try await scenario.value
                #expect(result.status == 0, "\(result.error)")
                #expect(result.output.contains(#""contentType": "text/event-stream""#), "\(result.output)")
            }
            #expect(try await op.call("usage.summary")["total"]?["calls"] == 0)
        }
    }

    /// A proxy killed (SIGKILL) while a call runs: what it committed stays charged, and the running call's hold
    /// expires (`--hold-ttl-ms`) — nobody is left to release it.
    @Test func aKilledProxyLosesNoCommittedUsage_andItsOpenHoldExpires() async throws {
        try await TestServer.with(configure: { $0.runtime.sessionSweepMs = 50 }) { server in
            let world = try await Fixture.make(on: server)
            let op = try await capAgentAtOnePerDay(world, on: server)
            let pair = try await ProxyPair.launch(
                tollgate: server.address, proxyArguments: ["--hold-ttl-ms", "2000"], upstreamArguments: [])
            defer { pair.upstream.signal(SIGKILL) }
            let (proxy, url) = (pair.proxy, pair.url)
            // Two calls committed (echo, headers)…
            _ = try await Self.scenario(url, mode: "legacy", calls: 1, token: world.agentToken)
            // …and a third running, its stream open, when the proxy is killed.
            let running = Task {
                try await run(
                    Self.python, [Self.integration("http_cancel_scenario.py"), url],
                    environment: ["TOLLGATE_TOKEN": world.agentToken, "SCENARIO_CLOSE_AFTER_SECONDS": "8"],
                    timeoutSeconds: 60)
            }
            var held = false
            for _ in 0..<200 where !held {
                held = try await spent(op) == "0.006"
                if !held { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(held, "two charged and one held")
            let killed = await proxy.stop(with: SIGKILL)
            #expect(killed.status == SIGKILL)
            #expect(try await op.call("usage.summary")["total"]?["calls"] == 2, "what was committed stays")
            var expired = false
            for _ in 0..<150 where !expired {
                expired = try await spent(op) == "0.004"
                if !expired { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(expired, "the killed proxy's hold expired")
            _ = try await running.value  // its connection was cut: it fails, as it should
            #expect(try await op.call("usage.summary")["total"]?["calls"] == 2)
        }
    }

    @Test func whileTollgateIsAway_anUnknownCredentialIsTurnedAway() async throws {
        let nothingListens = try ClosedPort()
        try await Self.withProxy(tollgate: nothingListens.address) { url, _, _ in
            let post = """
                import sys, urllib.error, urllib.request
                request = urllib.request.Request(sys.argv[1], data=b"{}", method="POST", headers={
                    "Authorization": "Bearer AGT-someone", "Content-Type": "application/json"})
                try:
                    print(urllib.request.urlopen(request).status, end="")
                except urllib.error.HTTPError as error:
                    print(error.code, end="")
                """
            let result = try await run(Self.python, ["-c", post, url], timeoutSeconds: 30)
            #expect(result.output == "503", "\(result)")
        }
        withExtendedLifetime(nothingListens) {}
    }
}
