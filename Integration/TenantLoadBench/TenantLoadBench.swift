import Foundation
import Synchronization
import TollgateClient
import TollgateCore
import TollgateTesting

/// Does one tenant's load or size slow the others, or itself? Two measurements on a live server (SQLite by
/// default, group commit, synchronous=FULL), client and server in this process:
///
/// - `flood`: 8 connections of tenant "busy" send a stream of malformed and odd but valid requests at
///   `--rate` frames/s (new sessions, holds, agents, plan versions, calls into closed sessions, listings, bad
///   JSON, unknown methods), `--frames` in all; meanwhile tenant "quiet" makes one `meter.verify` every 20 ms.
///   Prints the quiet tenant's latency per window of `--window` flood frames. Flat figures mean isolation.
/// - `size`: a tenant is grown to `--objects` open holds, each in its own open session, and as many agents;
///   then `meter.verify` is measured in it and in a fresh tenant (16 connections, one call in flight each).
/// - `retry`: `--keys` calls are recorded, the server restarts, and every client retries at once (16
///   connections): the latency of a replayed key, which must not grow with the number of keys stored.
///
///     swift run -c release TollgateTenantLoadBench flood [--rate 500] [--frames 60000] [--window 10000]
///     swift run -c release TollgateTenantLoadBench size [--objects 100000] [--seconds 5]
///     swift run -c release TollgateTenantLoadBench retry [--keys 30000]
///     (both take [--storage URL])
@main
struct TenantLoadBench {
    static func main() async throws {
        var arguments = Array(CommandLine.arguments.dropFirst())
        let mode = arguments.isEmpty ? "flood" : arguments.removeFirst()
        var options = [
            "rate": "500", "frames": "60000", "window": "10000", "objects": "100000", "seconds": "5",
            "storage": "", "keys": "30000",
        ]
        func usage() -> Never {
            print(
                "usage: TollgateTenantLoadBench flood|size|retry [--rate N] [--frames N] [--window N] [--objects N] "
                    + "[--seconds N] [--keys N] [--storage URL]")
            exit(64)
        }
        var rest = arguments[...]
        while let flag = rest.popFirst() {
            guard flag.hasPrefix("--"), let value = rest.popFirst(), options[String(flag.dropFirst(2))] != nil else {
                usage()
            }
            options[String(flag.dropFirst(2))] = value
        }
        guard ["flood", "size", "retry"].contains(mode), let keys = Int(options["keys"]!), keys > 0,
            let rate = Int(options["rate"]!), rate > 0,
            let frames = Int(options["frames"]!), frames > 0, let window = Int(options["window"]!), window > 0,
            let objects = Int(options["objects"]!), objects >= 0, let seconds = Double(options["seconds"]!),
            seconds > 0
        else { usage() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tollgate-load-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let storage =
            options["storage"]!.isEmpty
            ? "sqlite:" + directory.appendingPathComponent("load.sqlite").path
            : options["storage"]!
        print("storage: \(storage.hasPrefix("postgres") ? "postgres" : storage)")
        // Room for the grown tenant's sessions beside the ones the measurements open.
        let server = try await TestServer.start(storageURL: storage) {
            $0.listener.unauthenticatedIdleMs = 600_000
            $0.runtime.openSessionsMax = objects + 1000
        }
        switch mode {
        case "flood": try await flood(server, rate: rate, frames: frames, window: window)
        case "size": try await size(server, objects: objects, seconds: seconds)
        default:
            try await retry(server, keys: keys, storage: storage)
            return
        }
        try await server.stop()
    }

    /// A plan for agents: 0.001 a call; a cap that is checked on every call but never reached.
    static func world(_ server: TestServer, _ name: String) async throws -> Fixture {
        let world = try await Fixture.make(on: server, name: name)
        let op = try await server.connect(token: world.operatorToken)
        _ = try await op.call(
            "caps.set",
            [
                "scope": "customer", "scopeId": .string(world.customerId),
                "limit": "1000000000", "period": "month",
            ])
        _ = try await op.call(
            "caps.set",
            [
                "scope": "agent", "scopeId": .string(world.agentId),
                "limit": "1000000000", "period": "session",
            ])
        await op.close()
        return world
    }

    static func flood(_ server: TestServer, rate: Int, frames: Int, window: Int) async throws {
        let busy = try await world(server, "busy")
        let quiet = try await world(server, "quiet")
        print("flood: 8 connections, \(rate) frames/s, \(frames) frames; quiet tenant: one meter.verify every 20 ms")
        let sent = Counter()
        let flooders = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for lane in 0..<8 {
                    group.addTask {
                        try await floodLane(server, busy, lane: lane, rate: rate / 8, frames: frames / 8, sent: sent)
                    }
                }
                try await group.waitForAll()
            }
        }
        let agent = try await server.connect(token: quiet.agentToken)
        var latencies: [Double] = []
        var windowStart = 0
        var n = 0
        print("flood frames | quiet verify p50 | p99 | max | failed")
        var failed = 0
        while true {
            let done = flooders.isCancelled || sent.value >= frames
            let start = ContinuousClock.now
            do {
                _ = try await agent.call("meter.verify", ["tool": "search", "idempotencyKey": .string("q\(n)")])
            } catch { failed += 1 }
            latencies.append(
                Double((ContinuousClock.now - start).components.attoseconds) / 1e15
                    + Double((ContinuousClock.now - start).components.seconds) * 1000)
            n += 1
            if sent.value - windowStart >= window || done {
                report("\(windowStart)–\(sent.value)", latencies, failed)
                windowStart = sent.value
                latencies = []
                failed = 0
            }
            if done { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        try await flooders.value
    }

    /// One flooding connection pair (agent and operator): a fixed cycle of odd requests, paced to `rate`/s.
    static func floodLane(_ server: TestServer, _ busy: Fixture, lane: Int, rate: Int, frames: Int, sent: Counter)
        async throws
    {
        let agent = try await server.connect(token: busy.agentToken)
        let op = try await server.connect(token: busy.operatorToken)
        let interval = Duration.nanoseconds(1_000_000_000 / max(1, rate))
        var next = ContinuousClock.now
        for n in 0..<frames {
            let id = "\(lane)-\(n)"
            // Answers are not awaited in order: each request runs on its own, as a pipelining client's would.
            switch n % 10 {
            case 0: agent.sendRaw(frame("{not json \(id)"))
            case 1: Task { _ = try? await agent.call("no.such.method.\(id)") }
            case 2: Task { _ = try? await agent.call("session.open", ["sessionId": .string("s\(id)")]) }
            case 3:
                Task {
                    _ = try? await agent.call(
                        "meter.authorize",
                        [
                            "tool": "search", "idempotencyKey": .string("h\(id)"),
                            "sessionId": .string("hs\(id)"),
                        ])
                }
            case 4:
                Task {
                    _ = try? await op.call(
                        "agents.create", ["teamId": .string(busy.teamId), "name": .string("a\(id)")])
                }
            case 5: Task { _ = try? await agent.call("session.close", ["sessionId": .string("s\(lane)-\(n - 3)")]) }
            case 6:
                Task {
                    _ = try? await agent.call(
                        "meter.verify",
                        [
                            "tool": "search", "idempotencyKey": .string("c\(id)"),
                            "sessionId": .string("s\(lane)-\(n - 4)"),
                        ])
                }
            case 7: Task { _ = try? await op.call("sessions.list", ["limit": 100]) }
            case 8: Task { _ = try? await op.call("plans.put", Fixture.searchPlan) }
            default: Task { _ = try? await op.call("caps.list") }
            }
            sent.add(1)
            next = next.advanced(by: interval)
            try await Task.sleep(until: next, clock: .continuous)
        }
        await agent.close()
        await op.close()
    }

    static func size(_ server: TestServer, objects: Int, seconds: Double) async throws {
        let fresh = try await world(server, "fresh")
        let big = try await world(server, "big")
        print("growing tenant big to \(objects) open holds in as many open sessions, and \(objects) agents")
        let op = try await server.connect(token: big.operatorToken)
        var connections: [TollgateConnection] = []
        for _ in 0..<16 { connections.append(try await server.connect(token: big.agentToken)) }
        let lanes = connections
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (l, agent) in lanes.enumerated() {
                group.addTask {
                    for n in stride(from: l, to: objects, by: lanes.count) {
                        _ = try await agent.call(
                            "meter.authorize",
                            [
                                "tool": "search", "idempotencyKey": .string("g\(n)"),
                                "sessionId": .string("gs\(n)"), "ttlMs": 86_400_000,
                            ])
                        _ = try await op.call(
                            "agents.create", ["teamId": .string(big.teamId), "name": .string("g\(n)")])
                        if l == 0, n % 10_000 < lanes.count {
                            print("  \(n) of \(objects) (\(ContinuousClock.now - started))")
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        print("grown in \(ContinuousClock.now - started)")
        for tenant in [("fresh", fresh), ("big", big), ("fresh", fresh), ("big", big)] {
            let (count, samples) = try await verifyLoad(server, tenant.1, seconds: seconds)
            report("\(tenant.0): \(Int(Double(count) / seconds)) calls/s", samples, 0)
        }
    }

    /// Records `keys` calls, restarts the server on the same storage, and retries every key at once.
    static func retry(_ first: TestServer, keys: Int, storage: String) async throws {
        let world = try await world(first, "retry")
        let lanes = 16
        func each(_ server: TestServer, _ body: @escaping @Sendable (TollgateConnection, Int) async throws -> Double)
            async throws -> [Double]
        {
            try await withThrowingTaskGroup(of: [Double].self) { group in
                for lane in 0..<lanes {
                    group.addTask {
                        let agent = try await server.connect(token: world.agentToken)
                        var samples: [Double] = []
                        for n in stride(from: lane, to: keys, by: lanes) { samples.append(try await body(agent, n)) }
                        await agent.close()
                        return samples
                    }
                }
                var all: [Double] = []
                for try await samples in group { all += samples }
                return all
            }
        }
        @Sendable func timed(_ agent: TollgateConnection, _ n: Int) async throws -> Double {
            let start = ContinuousClock.now
            let answer = try await agent.call("meter.verify", ["tool": "search", "idempotencyKey": .string("r\(n)")])
            precondition(answer["allowed"] == true)
            return milliseconds(ContinuousClock.now - start)
        }
        report("\(keys) first calls", try await each(first) { try await timed($0, $1) }, 0)
        try await first.stop()
        let second = try await TestServer.start(storageURL: storage)
        report("\(keys) retries after a restart", try await each(second) { try await timed($0, $1) }, 0)
        let usage = try await second.connect(token: world.operatorToken).call("usage.summary")
        print("recorded: \(usage["total"]?["calls"]?.int64Value ?? -1) calls (each key once)")
        try await second.stop()
    }

    /// 16 connections, one `meter.verify` in flight each, for `seconds`.
    static func verifyLoad(_ server: TestServer, _ world: Fixture, seconds: Double) async throws -> (Int, [Double]) {
        let stopAt = ContinuousClock.now + .nanoseconds(Int64(seconds * 1e9))
        let run = UUID().uuidString.prefix(8)
        return try await withThrowingTaskGroup(of: [Double].self) { group in
            for lane in 0..<16 {
                group.addTask {
                    let agent = try await server.connect(token: world.agentToken)
                    var samples: [Double] = []
                    var n = 0
                    while ContinuousClock.now < stopAt {
                        let start = ContinuousClock.now
                        _ = try await agent.call(
                            "meter.verify",
                            [
                                "tool": "search", "idempotencyKey": .string("v\(run)-\(lane)-\(n)"),
                                "sessionId": .string("v\(run)-\(lane)"),
                            ])
                        samples.append(milliseconds(ContinuousClock.now - start))
                        n += 1
                    }
                    await agent.close()
                    return samples
                }
            }
            var all: [Double] = []
            for try await samples in group { all += samples }
            return (all.count, all)
        }
    }

    static func milliseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
    }

    static func report(_ label: String, _ samples: [Double], _ failed: Int) {
        let sorted = samples.sorted()
        func at(_ p: Double) -> String {
            guard !sorted.isEmpty else { return "-" }
            return String(format: "%.2f ms", sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))])
        }
        print("\(label) | p50 \(at(0.5)) | p99 \(at(0.99)) | max \(at(1)) | failed \(failed)")
        fflush(nil)  // each line as soon as it is measured, also into a file
    }

    static func frame(_ text: String) -> [UInt8] {
        let body = Array(text.utf8)
        let n = UInt32(body.count)
        return [UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)] + body
    }
}

final class Counter: Sendable {
    private let count = Mutex(0)
    func add(_ n: Int) { count.withLock { $0 += n } }
    var value: Int { count.withLock { $0 } }
}
