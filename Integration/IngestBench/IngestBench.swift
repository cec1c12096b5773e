import Foundation
import Synchronization
import TollgateClient
import TollgateCore
import TollgateIngest
import TollgateJSON
import TollgateStorage
import TollgateTesting

/// Batched ingest: `--events` `tool_invocation` events sent with `events.ingest` in batches of `--batch` (1,000)
/// over `--connections` connections (4), each with `--in-flight` batches outstanding (2), against a live server in
/// this process — SQLite by default, every batch durable (synchronous=FULL) before it is answered. Prints events/s
/// over the whole run and the latency of a batch (sent to answered). Every event must come back `accepted`.
///
/// `--store-only yes` measures the floor under that figure: the store alone committing the same records (a charge,
/// its key, its fingerprint and provenance per event) in groups of `--batch`, one after the other as the ledger
/// writer does, with no server, client or JSON in the way.
///
///     swift run -c release TollgateIngestBench [--events 200000] [--batch 1000] [--connections 4] [--in-flight 2]
///         [--storage URL] [--store-only yes]
@main
struct IngestBench {
    static func main() async throws {
        var options = [
            "events": "200000", "batch": "1000", "connections": "4", "in-flight": "2", "storage": "",
            "store-only": "no",
        ]
        var rest = CommandLine.arguments.dropFirst()
        while let flag = rest.popFirst() {
            guard flag.hasPrefix("--"), let value = rest.popFirst(), options[String(flag.dropFirst(2))] != nil else {
                print(
                    "usage: TollgateIngestBench [--events N] [--batch N] [--connections N] [--in-flight N] "
                        + "[--storage URL] [--store-only yes]")
                exit(64)
            }
            options[String(flag.dropFirst(2))] = value
        }
        guard let events = Int(options["events"]!), let batch = Int(options["batch"]!),
            let connections = Int(options["connections"]!), let inFlight = Int(options["in-flight"]!),
            events > 0, (1...1000).contains(batch), connections > 0, inFlight > 0
        else {
            print("--events, --connections and --in-flight are positive; --batch is 1 to 1000")
            exit(64)
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-ingest-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let storage =
            options["storage"]!.isEmpty
            ? "sqlite:" + directory.appendingPathComponent("ingest.sqlite").path : options["storage"]!
        let server = try await TestServer.start(storageURL: storage) { $0.listener.batchMax = max(1000, batch) }
        let world = try await Fixture.make(on: server, name: "ingest-\(UUID().uuidString)")
        let op = try await server.connect(token: world.operatorToken)
        if options["store-only"] == "yes" {
            try await storeOnly(server: server, world: world, events: events, batch: batch)
            return
        }
        // A cap on the path, so that every event is checked against one, as in production.
        _ = try await op.call(
            "caps.set",
            ["scope": "customer", "scopeId": .string(world.customerId), "limit": "1000000000", "period": "month"])

        // The batches are made before the clock starts: the client's cost is sending them, not building them.
        let run = UUID().uuidString.prefix(8)
        let occurredAt = JSONValue.string(Timestamp.format(Date()))
        let batches: [JSONValue] = stride(from: 0, to: events, by: batch).map { first in
            .array(
                (first..<min(first + batch, events)).map { n in
                    [
                        "eventId": .string("\(run)-\(n)"), "type": "tool_invocation", "tool": "search",
                        "occurredAt": occurredAt,
                    ]
                })
        }
        print(
            "storage: \(storage.hasPrefix("postgres") ? "postgres" : "sqlite"), \(events) events in batches of "
                + "\(batch), \(connections) connections × \(inFlight) batches in flight")
        var clients: [TollgateConnection] = []
        for _ in 0..<connections { clients.append(try await server.connect(token: world.agentToken)) }
        let next = Counter()
        let cpuBefore = processCPUSeconds()
        let started = ContinuousClock.now
        let lanes = try await withThrowingTaskGroup(of: (latencies: [Double], accepted: Int).self) { group in
            for lane in 0..<(connections * inFlight) {
                let client = clients[lane % connections]
                group.addTask {
                    var latencies: [Double] = []
                    var accepted = 0
                    while true {
                        let index = next.increment()
                        guard index < batches.count else { break }
                        let sent = ContinuousClock.now
                        let answer = try await client.call("events.ingest", ["events": batches[index]])
                        latencies.append((ContinuousClock.now - sent).milliseconds)
                        accepted += (answer["results"]?.arrayValue ?? []).filter { $0["status"] == "accepted" }.count
                    }
                    return (latencies, accepted)
                }
            }
            var all: [(latencies: [Double], accepted: Int)] = []
            for try await lane in group { all.append(lane) }
            return all
        }
        let seconds = (ContinuousClock.now - started).milliseconds / 1000
        let cpu = processCPUSeconds() - cpuBefore
        let accepted = lanes.map(\.accepted).reduce(0, +)
        let latencies = lanes.flatMap(\.latencies).sorted()
        func percentile(_ p: Double) -> Double { latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
        print(
            String(
                format:
                    "%d events accepted in %.2f s: %.0f events/s; batch latency p50 %.1f ms, p99 %.1f ms; "
                    + "process CPU (server and clients) %.1f µs per event",
                accepted, seconds, Double(accepted) / seconds, percentile(0.5), percentile(0.99),
                cpu * 1e6 / Double(max(accepted, 1))))
        let usage = try await op.call("usage.summary")
        print("usage.summary: \(usage["total"]?["calls"]?.int64Value ?? -1) calls")
        guard accepted == events, usage["total"]?["calls"]?.int64Value == Int64(events) else {
            print("FAILED: every event must be accepted and counted once")
            exit(1)
        }
        try await server.stop()
    }
}

extension IngestBench {
    /// The store's own rate for the records a batch of events writes: groups of `batch` entries committed one after
    /// the other, each durable before the next starts, as `LedgerWriter` commits them.
    static func storeOnly(server: TestServer, world: Fixture, events: Int, batch: Int) async throws {
        let store = server.app.store
        let run = UUID().uuidString.prefix(8)
        let now = Date()
        let path = ChargePath(
            customerId: world.customerId, teamId: world.teamId, agentId: world.agentId, sessionId: "",
            credentialId: world.credentialId)
        let occurredAt = Timestamp.format(now)
        // Records shaped as the tenant actor makes them: the event's fingerprint, and its provenance as the answer.
        let groups: [[LedgerEntry]] = try stride(from: 0, to: events, by: batch).map { first in
            try (first..<min(first + batch, events)).map { n in
                let eventId = "\(run)-\(n)"
                // Charged 100 to the millisecond, as at 100,000 events/s: receipts are ordered by time.
                let at = now.addingTimeInterval(Double(n / 100) / 1000)
                let receiptId = Identifiers.make(.receipt, at: at)
                let raw: JSONValue = [
                    "eventId": .string(eventId), "type": "tool_invocation", "tool": "search",
                    "occurredAt": .string(occurredAt),
                ]
                let provenance = JSONCodec.string([
                    "eventId": .string(eventId), "status": "accepted", "type": "tool_invocation",
                    "receiptId": .string(receiptId), "cost": "0.001", "currency": "USD", "sessionId": "",
                    "occurredAt": .string(occurredAt), "chargedAt": .string(occurredAt),
                    "ingestedAt": .string(occurredAt), "source": "rpc",
                    "gates": ["schema", "idempotency", "timestamp", "lateness"],
                ])
                return LedgerEntry(
                    charge: ChargeRecord(
                        receiptId: receiptId, tenantId: world.tenantId, path: path,
                        subscriptionId: world.subscriptionId, planId: world.planId, planVersion: 1, tool: "search",
                        quantity: 1, cost: try Money(decimal: "0.001"), currency: "USD", idempotencyKey: eventId,
                        at: at),
                    idempotency: IdempotencyRecord(
                        tenantId: world.tenantId, key: eventId, method: "events.ingest",
                        params: IdempotencyGate.fingerprint(raw, principal: world.agentId), result: provenance,
                        createdAt: now))
            }
        }
        print("store only: \(events) events' records in groups of \(batch), committed one group after the other")
        let cpuBefore = processCPUSeconds()
        let started = ContinuousClock.now
        var recorded = 0
        for group in groups {
            recorded += try await store.commit(group).filter { $0 == .recorded }.count
        }
        let seconds = (ContinuousClock.now - started).milliseconds / 1000
        let cpu = processCPUSeconds() - cpuBefore
        print(
            String(
                format: "%d events recorded in %.2f s: %.0f events/s; process CPU %.1f µs per event",
                recorded, seconds, Double(recorded) / seconds, cpu * 1e6 / Double(max(recorded, 1))))
        guard recorded == events else {
            print("FAILED: every record must be written once")
            exit(1)
        }
        try await server.stop()
    }

    /// User and system CPU time of this process so far.
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }
}

/// The next batch to send, shared by the lanes.
final class Counter: Sendable {
    private let value = Mutex(0)
    func increment() -> Int {
        value.withLock { value in
            defer { value += 1 }
            return value
        }
    }
}

extension Duration {
    var milliseconds: Double {
        Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15
    }
}
