import Foundation
import TollgateClient
import TollgateJSON
import TollgateMCP
import TollgateTesting

/// What `tollgate-mcp-proxy` adds to a `tools/call`, on loopback.
///
/// Starts Tollgate in process (a fresh SQLite file by default: holds are durable writes), a fixture agent, and a
/// stdio MCP server that answers at once (this program, run with `--serve`), then:
/// 1. `--calls` sequential calls straight to the server, and as many through the proxy in front of it: latency
///    percentiles of each, and what the proxy adds (the hold's round trip to Tollgate, and two more pipe hops);
/// 2. `--concurrency` calls kept in flight through one proxy for `--seconds`: calls/s;
/// 3. that every call through the proxy was charged exactly once (after the proxy has exited).
///
///     swift build -c release --product TollgateMCPBench --product tollgate-mcp-proxy
///     .build/release/TollgateMCPBench [--calls 2000] [--concurrency 16] [--seconds 5] [--storage URL]
///
/// The proxy is the `tollgate-mcp-proxy` built beside this program. Client, proxy, server and Tollgate share the
/// machine's cores, so the figures are a ceiling on what the proxy adds on a machine of its own.
@main
struct MCPBench {
    static func main() async throws {
        var arguments = CommandLine.arguments.dropFirst()
        if arguments.first == "--serve" { return serve() }
        var options = ["calls": "2000", "concurrency": "16", "seconds": "5", "storage": "", "warmup": "200"]
        while let flag = arguments.popFirst() {
            guard flag.hasPrefix("--"), let value = arguments.popFirst(), options[String(flag.dropFirst(2))] != nil
            else {
                print(
                    "usage: TollgateMCPBench [--calls N] [--concurrency N] [--seconds N] [--warmup N] [--storage URL]")
                exit(64)
            }
            options[String(flag.dropFirst(2))] = value
        }
        guard let calls = Int(options["calls"]!), calls > 0, let concurrency = Int(options["concurrency"]!),
            concurrency > 0, let seconds = Double(options["seconds"]!), seconds > 0,
            let warmup = Int(options["warmup"]!), warmup >= 0
        else {
            print("usage: TollgateMCPBench [--calls N] [--concurrency N] [--seconds N] [--warmup N] [--storage URL]")
            exit(64)
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-mcp-bench-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let storage =
            options["storage"]!.isEmpty
            ? "sqlite:" + directory.appendingPathComponent("t.sqlite").path
            : options["storage"]!
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let proxy = me.deletingLastPathComponent().appendingPathComponent("tollgate-mcp-proxy").path
        guard FileManager.default.isExecutableFile(atPath: proxy) else {
            print("build tollgate-mcp-proxy beside this program first (\(proxy))")
            exit(69)
        }
        print("storage \(storage.hasPrefix("sqlite:") ? "sqlite (fresh file)" : storage)")
        try await measure(
            storage: storage, proxy: proxy, me: me, directory: directory, calls: calls, warmup: warmup,
            concurrency: concurrency, seconds: seconds)
    }

    nonisolated static func measure(
        storage: String, proxy: String, me: URL, directory: URL, calls: Int, warmup: Int, concurrency: Int,
        seconds: Double
    ) async throws {
        try await TestServer.with(storageURL: storage) { server in
            let world = try await Fixture.make(on: server)
            let upstream = [me.path, "--serve"]

            let direct = try LineClient(upstream, environment: [:])
            try await direct.initialize()
            _ = try await direct.sequentialCalls(warmup)
            let directLatencies = try await direct.sequentialCalls(calls)
            direct.close()

            let proxyCommand = [
                proxy, "--tollgate", server.address, "--spool", directory.appendingPathComponent("spool").path, "--",
            ]
            let proxied = try LineClient(proxyCommand + upstream, environment: ["TOLLGATE_TOKEN": world.agentToken])
            try await proxied.initialize()
            _ = try await proxied.sequentialCalls(warmup)
            let proxiedLatencies = try await proxied.sequentialCalls(calls)
            let (concurrentCalls, elapsed) = try await proxied.concurrentCalls(concurrency, seconds: seconds)
            proxied.close()
            proxied.waitUntilExit()

            // The floor under the proxy's figure: a hold alone, the durable write it waits for before forwarding.
            let agent = try await server.connect(token: world.agentToken)
            var holdLatencies: [Double] = []
            for index in 0..<calls {
                let start = ContinuousClock.now
                _ = try await agent.authorize(tool: "echo", key: "bench-hold-\(index)", sessionId: "bench-holds")
                holdLatencies.append(milliseconds(ContinuousClock.now - start))
            }
            _ = try await agent.closeSession("bench-holds")
            await agent.close()

            let d = Percentiles(directLatencies)
            let p = Percentiles(proxiedLatencies)
            let h = Percentiles(holdLatencies)
            print("sequential tools/call, \(calls) each (ms):      p50     p90     p99     max")
            print("  direct                                 " + d.row)
            print("  through the proxy                      " + p.row)
            print(
                String(
                    format: "  added by the proxy                     %7.3f %7.3f %7.3f", p.p50 - d.p50, p.p90 - d.p90,
                    p.p99 - d.p99))
            print("  of which a hold alone (meter.authorize) " + h.row)
            print(
                String(
                    format: "concurrent tools/call through one proxy: %d in flight, %d calls in %.1f s = %.0f calls/s",
                    concurrency, concurrentCalls, elapsed, Double(concurrentCalls) / elapsed))
            let op = try await server.connect(token: world.operatorToken)
            let charged = try await op.call("usage.summary")["total"]?["calls"]?.int64Value ?? -1
            let expected = Int64(warmup + calls + concurrentCalls)
            print(
                "charged \(charged) of \(expected) calls made through the proxy"
                    + (charged == expected ? "" : " — MISMATCH"))
            if charged != expected { exit(1) }
        }
    }

    /// A stdio MCP server that answers at once: one tool, `echo`.
    static func serve() {
        let output = LineWriter(fd: FileHandle.standardOutput.fileDescriptor)
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            for await line in LineReader.lines(of: FileHandle.standardInput.fileDescriptor) {
                let message = MCPMessage(bytes: line)
                guard case .request(let id, let method) = message.kind else { continue }
                let result: JSONValue
                switch method {
                case "initialize":
                    result = [
                        "protocolVersion": "2025-06-18", "capabilities": ["tools": [:]],
                        "serverInfo": ["name": "echo", "version": "1"],
                    ]
                case "tools/list":
                    result = ["tools": [["name": "echo", "inputSchema": ["type": "object"]]]]
                case "tools/call": result = ["content": [["type": "text", "text": "ok"]], "isError": false]
                default: result = [:]
                }
                output.write(JSONCodec.serialize(["jsonrpc": "2.0", "id": id, "result": result]))
            }
            done.signal()
        }
        done.wait()
    }
}

func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
}

/// Latency percentiles, in milliseconds.
struct Percentiles {
    let p50: Double, p90: Double, p99: Double, max: Double

    init(_ samples: [Double]) {
        let sorted = samples.sorted()
        func at(_ q: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))] }
        p50 = at(0.5)
        p90 = at(0.9)
        p99 = at(0.99)
        max = sorted.last ?? 0
    }

    var row: String { String(format: "%7.3f %7.3f %7.3f %7.3f", p50, p90, p99, max) }
}

/// An MCP client speaking JSON-RPC lines to a child process, with any number of requests in flight.
final class LineClient: @unchecked Sendable {
    private let process = Process()
    private let writer: LineWriter
    private let lock = NSLock()
    private var waiting: [Int64: CheckedContinuation<JSONValue, any Error>] = [:]
    private var nextId: Int64 = 0
    private let toChild: Pipe

    init(_ command: [String], environment: [String: String]) throws {
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        toChild = Pipe()
        let fromChild = Pipe()
        process.standardInput = toChild
        process.standardOutput = fromChild
        try process.run()
        writer = LineWriter(fd: toChild.fileHandleForWriting.fileDescriptor)
        let lines = LineReader.lines(of: fromChild.fileHandleForReading.fileDescriptor)
        Task.detached { [self] in
            for await line in lines {
                let message = MCPMessage(bytes: line)
                guard case .response(let id, _) = message.kind, let number = id.int64Value else { continue }
                let continuation = lock.withLock { waiting.removeValue(forKey: number) }
                continuation?.resume(returning: message.json ?? .null)
            }
            let orphans = lock.withLock {
                defer { waiting = [:] }
                return waiting.values
            }
            for continuation in orphans { continuation.resume(throwing: CancellationError()) }
        }
    }

    func request(_ method: String, _ params: JSONValue) async throws -> JSONValue {
        try await withCheckedThrowingContinuation { continuation in
            let id = lock.withLock {
                nextId += 1
                waiting[nextId] = continuation
                return nextId
            }
            writer.write(
                JSONCodec.serialize(["jsonrpc": "2.0", "id": .integer(id), "method": .string(method), "params": params])
            )
        }
    }

    func initialize() async throws {
        _ = try await request(
            "initialize",
            ["protocolVersion": "2025-06-18", "capabilities": [:], "clientInfo": ["name": "bench", "version": "1"]])
        writer.write(JSONCodec.serialize(["jsonrpc": "2.0", "method": "notifications/initialized"]))
    }

    func call() async throws {
        let answer = try await request("tools/call", ["name": "echo", "arguments": [:]])
        guard answer["result"]?["isError"] == false else { throw BenchError("a call failed: \(answer)") }
    }

    /// Milliseconds each call took, one after the other.
    func sequentialCalls(_ count: Int) async throws -> [Double] {
        var latencies: [Double] = []
        latencies.reserveCapacity(count)
        for _ in 0..<count {
            let start = ContinuousClock.now
            try await call()
            latencies.append(milliseconds(ContinuousClock.now - start))
        }
        return latencies
    }

    /// Calls completed with `width` kept in flight for `seconds`, and the seconds it took.
    func concurrentCalls(_ width: Int, seconds: Double) async throws -> (Int, Double) {
        let start = ContinuousClock.now
        let deadline = start + .milliseconds(Int(seconds * 1000))
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<width {
                group.addTask {
                    var done = 0
                    while ContinuousClock.now < deadline {
                        try await self.call()
                        done += 1
                    }
                    return done
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = ContinuousClock.now - start
        return (total, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    func close() { try? toChild.fileHandleForWriting.close() }

    func waitUntilExit() { process.waitUntilExit() }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
