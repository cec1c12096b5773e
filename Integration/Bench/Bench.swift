import Foundation
import NIOCore
import TollgateClient
import TollgateCore
import TollgateTesting

/// Throughput and latency of durable `meter.verify` calls.
///
/// Starts a server on a fresh SQLite file (WAL, synchronous=FULL), sets up one tenant with an agent under a
/// customer cap, opens `connections` agent connections that each keep `depth` calls in flight (pipelining),
/// runs for `seconds`, and prints calls/s and latency percentiles. Client and server share this process and
/// the machine's cores, so the figures are a floor for a server on its own machine.
///
///     swift run -c release TollgateBench [--seconds 10] [--connections 64] [--depth 1] [--storage URL]
///                                        [--keys sequential|random] [--client lean|swift]
///
/// Keys are `l<connection>-<n>` by default, a run of keys per connection as a client numbering its calls
/// would send; `--keys random` (lean client only) spreads them over the key space as UUIDs would, which makes the
/// key index take one page write per key.
@main
struct Bench {
    static func main() async throws {
        var options = [
            "seconds": "10", "connections": "64", "depth": "1", "storage": "", "warmup": "2", "group": "1000",
            "client": "lean", "keys": "sequential",
        ]
        var arguments = CommandLine.arguments.dropFirst()
        func usage() -> Never {
            print(
                "usage: TollgateBench [--seconds N] [--connections N] [--depth N] [--warmup N] [--group N] "
                    + "[--storage URL] [--keys sequential|random] [--client lean|swift]"
            )
            exit(64)
        }
        while let flag = arguments.popFirst() {
            guard flag.hasPrefix("--"), let value = arguments.popFirst(), options[String(flag.dropFirst(2))] != nil
            else { usage() }
            options[String(flag.dropFirst(2))] = value
        }
        guard let seconds = Double(options["seconds"]!), seconds > 0, let warmup = Double(options["warmup"]!),
            warmup >= 0,
            let connections = Int(options["connections"]!), connections > 0, let depth = Int(options["depth"]!),
            depth > 0,
            let groupMax = Int(options["group"]!), groupMax > 0,
            ["sequential", "random"].contains(options["keys"]!), ["lean", "swift"].contains(options["client"]!)
        else { usage() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tollgate-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let storage =
            options["storage"]!.isEmpty
            ? "sqlite:" + directory.appendingPathComponent("bench.sqlite").path
            : options["storage"]!
        print("storage: \(storage.hasPrefix("sqlite") ? storage : "postgres") (group commit, synchronous=FULL)")
        print(
            "connections: \(connections), in flight per connection: \(depth), warm-up: \(warmup) s, "
                + "measured: \(seconds) s, keys: \(options["keys"]!)"
        )

        let server = try await TestServer.start(storageURL: storage) { $0.ledger.groupEntriesMax = groupMax }
        let world = try await Fixture.make(on: server, name: "bench")
        let op = try await server.connect(token: world.operatorToken)
        // A cap that is checked on every call but never reached.
        _ = try await op.call(
            "caps.set",
            [
                "scope": "customer", "scopeId": .string(world.customerId),
                "limit": "1000000000", "period": "month",
            ])
        // One clock for both load generators: NIO's, which the lean one reads on its event loops.
        let measureFrom = NIODeadline.now() + .nanoseconds(Int64(warmup * 1e9))
        let stopAt = measureFrom + .nanoseconds(Int64(seconds * 1e9))
        let samples: [Int64]
        if options["client"] == "lean" {
            let plans = (0..<connections).map {
                LeanAgent.Plan(
                    token: world.agentToken, connection: $0, depth: depth, measureFrom: measureFrom,
                    stopAt: stopAt, randomKeys: options["keys"] == "random")
            }
            samples = try await withThrowingTaskGroup(of: [Int64].self) { group in
                for plan in plans {
                    group.addTask { try await LeanAgent.run(host: server.host, port: server.port, plan: plan) }
                }
                var all: [Int64] = []
                for try await latencies in group { all += latencies }
                return all.sorted()
            }
        } else {
            samples = try await clientRun(
                server: server, token: world.agentToken, connections: connections, depth: depth,
                measureFrom: measureFrom, stopAt: stopAt)
        }
        let usage = try await op.call("usage.summary")
        try await server.stop()

        func percentile(_ p: Double) -> String {
            guard !samples.isEmpty else { return "-" }
            let index = min(samples.count - 1, Int((Double(samples.count) * p).rounded(.up)) - 1)
            return String(format: "%.2f ms", Double(samples[max(0, index)]) / 1000)
        }
        print(
            String(
                format: "calls/s: %.0f (%d durable verified calls in %.0f s)", Double(samples.count) / seconds,
                samples.count, seconds))
        print(
            "latency p50: \(percentile(0.50))  p99: \(percentile(0.99))  p999: \(percentile(0.999))  "
                + "max: \(percentile(1.0))"
        )
        print(
            "recorded in storage: \(usage["total"]?["calls"]?.int64Value.map(String.init) ?? "?") calls "
                + "(warm-up included)"
        )
        try? FileManager.default.removeItem(at: directory)
    }

    /// The same load through `TollgateConnection`, the Swift client users get (`--client swift`).
    static func clientRun(
        server: TestServer, token: String, connections: Int, depth: Int,
        measureFrom: NIODeadline, stopAt: NIODeadline
    ) async throws -> [Int64] {
        var agents: [TollgateConnection] = []
        for _ in 0..<connections { agents.append(try await server.connect(token: token)) }
        let samples = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for (c, agent) in agents.enumerated() {
                for lane in 0..<depth {
                    group.addTask {
                        var latencies: [Int64] = []
                        var n = 0
                        while true {
                            let sent = NIODeadline.now()
                            if sent >= stopAt { break }
                            _ = try await agent.call(
                                "meter.verify",
                                [
                                    "tool": "search", "idempotencyKey": .string("b\(c)-\(lane)-\(n)"),
                                ])
                            n += 1
                            if sent >= measureFrom { latencies.append((NIODeadline.now() - sent).nanoseconds / 1000) }
                        }
                        return latencies
                    }
                }
            }
            var all: [Int64] = []
            for try await latencies in group { all += latencies }
            return all.sorted()
        }
        for agent in agents { await agent.close() }
        return samples
    }
}
