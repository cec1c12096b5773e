import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

/// `events.ingest` over real TCP, on every backend: each event answered in order, accepted ones charged as
/// verified calls are, each id recorded once however often or however concurrently it is sent, caps never
/// crossed by a batch, and every event traceable with `events.get`.
@Suite struct EventIngestTests {
    static var backends: [String] { storageBackends("events") }

    /// Mid-month, so that "late" (over 24 h) and "its month has ended" (an adjustment) are different events.
    static let now = Timestamp.parse("2026-12-15T12:00:00.000Z")!

    static func at(hoursAgo: Double) -> JSONValue {
        .string(Timestamp.format(now.addingTimeInterval(-hoursAgo * 3600)))
    }

    static func invocation(
        _ id: String, tool: String = "search", hoursAgo: Double = 0, extra: [String: JSONValue] = [:]
    )
        -> JSONValue
    {
        var fields: [String: JSONValue] = [
            "eventId": .string(id), "type": "tool_invocation", "occurredAt": at(hoursAgo: hoursAgo),
            "tool": .string(tool),
        ]
        for (key, value) in extra { fields[key] = value }
        return .object(fields)
    }

    static func start(_ storageURL: String, clock: ManualClock) async throws -> TestServer {
        try await TestServer.start(storageURL: storageURL, clock: clock)
    }

    static func statuses(_ answer: JSONValue) -> [String] {
        (answer["results"]?.arrayValue ?? []).map { result in
            let status = result["status"]?.stringValue ?? "?"
            let reason = result["reason"]?.stringValue.map { ":" + $0 } ?? ""
            return status + reason
        }
    }

    @Test(arguments: backends)
    func aBatch_isAnsweredEventByEvent_andItsEventsAreChargedOnce(storageURL: String) async throws {
        let clock = ManualClock(Self.now)
        let server = try await Self.start(storageURL, clock: clock)
        do {
            let world = try await Fixture.make(on: server, name: "events-\(UUID().uuidString)")
            let agent = try await server.connect(token: world.agentToken)
            let batch: [JSONValue] = [
                Self.invocation("e1"),
                Self.invocation("e2", tool: "transform", extra: ["quantity": 2]),
                [
                    "eventId": "e3", "type": "token_consumption", "occurredAt": Self.at(hoursAgo: 1),
                    "properties": [
                        "inputTokens": 1200, "outputTokens": 300, "model": "gpt-x", "provider": "openai",
                        "providerCost": "0.0042",
                    ],
                ],
                Self.invocation("e1"),  // again in the same batch
                Self.invocation("e4", hoursAgo: 48),  // late: over a day old, still this month
                Self.invocation("e5", hoursAgo: 24 * 20),  // its month has ended: an adjustment
                Self.invocation("e6", hoursAgo: 24 * 91),  // beyond 90 days
                Self.invocation("e7", hoursAgo: -1),  // an hour ahead of the server's clock
                ["eventId": "e8", "type": "tool_invocation", "occurredAt": Self.at(hoursAgo: 0)],  // no tool
                Self.invocation("e9", tool: "search", extra: ["type": "gpu_seconds"]),  // no plan declares it
            ]
            let first = try await agent.call("events.ingest", ["events": JSONValue.array(batch)])
            #expect(
                Self.statuses(first) == [
                    "accepted", "accepted", "accepted", "duplicate", "late", "late", "rejected:TOO_OLD",
                    "rejected:TOO_FAR_IN_FUTURE", "rejected:VALIDATION_FAILED", "rejected:VALIDATION_FAILED",
                ], "\(first)")
            let results = first["results"]?.arrayValue ?? []
            #expect(results[0]["cost"] == "0.001" && results[1]["cost"] == "0.5" && results[2]["cost"] == "0")
            #expect(results[3]["receiptId"] == results[0]["receiptId"], "a duplicate names the event it repeats")
            #expect(results[5]["adjustment"] == true && results[4]["adjustment"] == nil)
            #expect(results[8]["field"] == "tool" && results[9]["field"] == "type")

            // The very batch again (an answer lost, say): nothing new is counted.
            let again = try await agent.call("events.ingest", ["events": JSONValue.array(batch)])
            #expect(
                Self.statuses(again).prefix(6) == [
                    "duplicate", "duplicate", "duplicate", "duplicate", "duplicate",
                    "duplicate",
                ], "\(again)")
            #expect(again["results"]?.arrayValue?[1]["receiptId"] == results[1]["receiptId"])
            let op = try await server.connect(token: world.operatorToken)
            let usage = try await op.call("usage.summary", ["groupBy": ["tool"]])
            // Four calls (the token event is usage but no call), five records.
            #expect(usage["total"]?["calls"] == 4 && usage["total"]?["cost"] == "0.503", "\(usage)")
            #expect(usage["total"]?["quantity"] == 5)
            #expect(usage["total"]?["inputTokens"] == 1200 && usage["total"]?["providerCost"] == "0.0042")

            // An event id is an idempotency key: a call may not reuse it, nor an event its key.
            await #expect(throws: RPCError.self) {
                _ = try await agent.call("meter.verify", ["tool": "search", "idempotencyKey": "e1"])
            }
            _ = try await agent.call("meter.verify", ["tool": "search", "idempotencyKey": "k1"])
            let reused = try await agent.call("events.ingest", ["events": [Self.invocation("k1")]])
            #expect(Self.statuses(reused) == ["rejected:IDEMPOTENCY_MISMATCH"], "\(reused)")
            // A fixed event goes through under the id its rejected version had.
            let fixed = try await agent.call("events.ingest", ["events": [Self.invocation("e8")]])
            #expect(Self.statuses(fixed) == ["accepted"])
        } catch {
            Issue.record(error)
        }
        try await server.stop()
    }

    @Test func aBatchNeverPushesACapOver_theEventsThatWouldAreRefusedAndTheOthersKept() async throws {
        try await TestServer.with(clock: ManualClock(Self.now)) { server in
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            _ = try await op.call(
                "caps.set", ["scope": "agent", "scopeId": .string(world.agentId), "limit": "0.0025", "period": "day"])
            let agent = try await server.connect(token: world.agentToken)
            let answer = try await agent.call(
                "events.ingest",
                [
                    "events": [
                        Self.invocation("c1"), Self.invocation("c2"), Self.invocation("c3"),
                        Self.invocation("c4", tool: "transform"),
                        [
                            "eventId": "c5", "type": "token_consumption", "occurredAt": Self.at(hoursAgo: 0),
                            "properties": ["inputTokens": 10, "model": "m"],
                        ],
                    ]
                ])
            #expect(
                Self.statuses(answer) == [
                    "accepted", "accepted", "rejected:BUDGET_EXCEEDED", "rejected:BUDGET_EXCEEDED", "accepted",
                ], "\(answer)")
            let refused = answer["results"]?.arrayValue?[2]
            #expect(refused?["retryable"] == false && refused?["hint"] != nil, "a refusal says what to do")
            let caps = try await op.call("caps.list")["caps"]?.arrayValue ?? []
            #expect(caps.first?["spent"] == "0.002")
            // Refused, its id stays free: once the cap allows, the same event goes through.
            _ = try await op.call(
                "caps.set", ["scope": "agent", "scopeId": .string(world.agentId), "limit": "1", "period": "day"])
            let retried = try await agent.call("events.ingest", ["events": [Self.invocation("c3")]])
            #expect(Self.statuses(retried) == ["accepted"])
        }
    }

    @Test(arguments: backends)
    func theSameBatchSentTwiceConcurrently_recordsEachEventOnce(storageURL: String) async throws {
        let server = try await Self.start(storageURL, clock: ManualClock(Self.now))
        do {
            let world = try await Fixture.make(on: server, name: "events-\(UUID().uuidString)")
            let batch = JSONValue.array((0..<300).map { Self.invocation("twice-\($0)") })
            let first = try await server.connect(token: world.agentToken)
            let second = try await server.connect(token: world.agentToken)
            async let a = first.call("events.ingest", ["events": batch])
            async let b = second.call("events.ingest", ["events": batch])
            let answers = try await [a, b]
            for index in 0..<300 {
                let pair = answers.map { $0["results"]?.arrayValue?[index]["status"]?.stringValue ?? "?" }.sorted()
                #expect(pair == ["accepted", "duplicate"], "event \(index): \(pair)")
            }
            let op = try await server.connect(token: world.operatorToken)
            let usage = try await op.call("usage.summary")
            #expect(usage["total"]?["calls"] == 300 && usage["total"]?["cost"] == "0.3", "\(usage)")
        } catch {
            Issue.record(error)
        }
        try await server.stop()
    }

    /// A storage failure in the middle of a batch's transaction — the database itself refusing the 26th of 50
    /// rows, with the first 25 already written in it (a trigger) — on SQLite and PostgreSQL: the call fails, nothing
    /// of the batch is recorded, and the batch sent again is accepted whole.
    @Test(arguments: storageBackends("events-failure", memory: false))
    func aDatabaseFailureInsideABatchsTransaction_recordsNothingOfIt(storageURL: String) async throws {
        let server = try await Self.start(storageURL, clock: ManualClock(Self.now))
        let failing = "f-\(UUID().uuidString)"
        let trigger = "fail_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased())"
        do {
            let world = try await Fixture.make(on: server, name: "failure-\(UUID().uuidString)")
            let agent = try await server.connect(token: world.agentToken)
            var batch = (0..<50).map { Self.invocation("f\($0)-\(failing)") }
            batch[25] = Self.invocation(failing)
            try await DatabaseFault.failInserts(ofKey: failing, named: trigger, in: storageURL)
            await #expect(throws: RPCError.self) {
                _ = try await agent.call("events.ingest", ["events": JSONValue.array(batch)])
            }
            let op = try await server.connect(token: world.operatorToken)
            #expect(try await op.call("usage.summary")["total"]?["calls"] == 0, "nothing of the batch was recorded")
            try await DatabaseFault.remove(named: trigger, in: storageURL)
            let retried = try await agent.call("events.ingest", ["events": JSONValue.array(batch)])
            #expect(Self.statuses(retried) == Array(repeating: "accepted", count: 50), "\(retried)")
            #expect(try await op.call("usage.summary")["total"]?["calls"] == 50)
        } catch {
            Issue.record(error)
        }
        try? await DatabaseFault.remove(named: trigger, in: storageURL)
        try await server.stop()
    }

    @Test func aStorageFailureMidBatch_recordsNothing_andTheRetryIsAcceptedWhole() async throws {
        let store = GatedStore()
        try await TestServer.with(clock: ManualClock(Self.now), store: store) { server in
            let world = try await Fixture.make(on: server)
            let agent = try await server.connect(token: world.agentToken)
            let batch = JSONValue.array((0..<50).map { Self.invocation("f\($0)") })
            store.failNextCommits(1)
            await #expect(throws: RPCError.self) { _ = try await agent.call("events.ingest", ["events": batch]) }
            let op = try await server.connect(token: world.operatorToken)
            #expect(try await op.call("usage.summary")["total"]?["calls"] == 0, "nothing of the batch was recorded")
            let retried = try await agent.call("events.ingest", ["events": batch])
            #expect(Self.statuses(retried) == Array(repeating: "accepted", count: 50), "\(retried)")
            #expect(try await op.call("usage.summary")["total"]?["calls"] == 50)
        }
    }

    @Test(arguments: backends)
    func anEvent_showsItsProvenance_toItsAgentAndOperator_andToNoOneElse(storageURL: String) async throws {
        let server = try await Self.start(storageURL, clock: ManualClock(Self.now))
        do {
            let world = try await Fixture.make(on: server, name: "events-\(UUID().uuidString)")
            let other = try await Fixture.make(on: server, name: "events-other-\(UUID().uuidString)")
            let agent = try await server.connect(token: world.agentToken)
            // An id with characters JSON must escape: the provenance stored with it reads back whole.
            let id = #"p1 "quoted" \ ü"#
            let sent = Self.invocation(
                id, tool: "transform", hoursAgo: 30,
                extra: ["sessionId": "task-7", "parentInvocationId": "p0", "retryCount": 1])
            _ = try await agent.call("events.ingest", ["events": [sent], "source": "upload"])
            let shown = try await agent.call("events.get", ["eventId": .string(id)])
            #expect(shown["eventId"] == .string(id))
            #expect(shown["status"] == "late" && shown["source"] == "upload" && shown["type"] == "tool_invocation")
            #expect(shown["payload"] == sent, "the event exactly as sent")
            #expect(
                shown["occurredAt"] == Self.at(hoursAgo: 30)
                    && shown["ingestedAt"] == JSONValue.string(Timestamp.format(Self.now)))
            #expect(shown["gates"] == ["schema", "idempotency", "timestamp", "lateness"])
            let context = shown["context"]
            #expect(
                context?["customerId"] == JSONValue.string(world.customerId)
                    && context?["agentId"] == JSONValue.string(world.agentId))
            #expect(
                context?["subscriptionId"] == JSONValue.string(world.subscriptionId) && context?["planVersion"] == 1)
            #expect(context?["price"] == "0.25" && context?["sessionId"] == "task-7" && context?["retryCount"] == 1)
            // A verified call is an event too, and so is a held one, once committed; a caller may say who it is.
            _ = try await agent.call("meter.verify", ["tool": "search", "idempotencyKey": "v1"])
            let verified = try await agent.call("events.get", ["eventId": "v1"])
            #expect(verified["source"] == "rpc" && verified["context"]?["price"] == "0.001", "\(verified)")
            let hold = try await agent.call(
                "meter.authorize", ["tool": "transform", "idempotencyKey": "h1", "source": "sdk"])
            #expect(try await agent.call("events.get", ["eventId": "h1"])["status"] == "held")
            _ = try await agent.call("meter.commit", ["reservationId": hold["reservationId"]!])
            let held = try await agent.call("events.get", ["eventId": "h1"])
            #expect(held["status"] == "accepted" && held["source"] == "sdk", "\(held)")
            #expect(held["method"] == "meter.authorize" && held["context"]?["price"] == "0.25", "\(held)")
            do {
                _ = try await agent.call("meter.verify", ["tool": "search", "idempotencyKey": "v2", "source": "me"])
                Issue.record("an unknown source was taken")
            } catch let error as RPCError {
                #expect(error.reason == "VALIDATION_FAILED" && error.data?["field"] == "source")
            }
            // The tenant's operator sees it; another tenant sees nothing of it.
            let op = try await server.connect(token: world.operatorToken)
            #expect(try await op.call("events.get", ["eventId": .string(id)])["eventId"] == .string(id))
            for token in [other.operatorToken, other.agentToken] {
                let stranger = try await server.connect(token: token)
                do {
                    _ = try await stranger.call("events.get", ["eventId": .string(id)])
                    Issue.record("another tenant read the event")
                } catch let error as RPCError {
                    #expect(error.reason == "NOT_FOUND")
                }
            }
        } catch {
            Issue.record(error)
        }
        try await server.stop()
    }

    /// A token event is usage but not a call — in an open session's record rebuilt from storage after a restart
    /// too, and in a closed one's.
    @Test(arguments: storageBackends("events-calls", memory: false))
    func aTokenEvent_countsInTokensNotCalls_acrossARestart(storageURL: String) async throws {
        try await TestServer.scope { servers in
            var server = try await servers.start(storageURL: storageURL, clock: ManualClock(Self.now))
            let world = try await Fixture.make(on: server, name: "calls-\(UUID().uuidString)")
            var agent = try await server.connect(token: world.agentToken)
            let token: JSONValue = [
                "eventId": "tok", "type": "token_consumption", "occurredAt": Self.at(hoursAgo: 0), "sessionId": "s",
                "properties": ["inputTokens": 700, "model": "m"],
            ]
            _ = try await agent.call(
                "events.ingest", ["events": [Self.invocation("call", extra: ["sessionId": "s"]), token]])
            try await server.stop()
            server = try await servers.start(storageURL: storageURL, clock: ManualClock(Self.now))
            agent = try await server.connect(token: world.agentToken)
            let open = try await agent.call("session.get", ["sessionId": "s"])
            #expect(open["calls"] == 1 && open["inputTokens"] == 700, "\(open)")
            let closed = try await agent.call("session.close", ["sessionId": "s"])
            #expect(closed["calls"] == 1 && closed["inputTokens"] == 700, "\(closed)")
            let op = try await server.connect(token: world.operatorToken)
            let listed = try await op.call("sessions.list", ["state": "all"])["sessions"]?.arrayValue?.first {
                $0["sessionId"] == "s"
            }
            #expect(listed?["calls"] == 1, "\(String(describing: listed))")
        }
    }

    /// A generated log of 400 events, sent in its order to one tenant and shuffled — in other batches, with a batch
    /// sent twice — to another: the same totals, per tool and in all, although tiered prices make each event's own
    /// price depend on what came before it.
    @Test(arguments: backends)
    func aShuffledLog_comesToTheSameTotals(storageURL: String) async throws {
        let plan: JSONValue = [
            "name": "shuffle", "currency": "USD",
            "charges": [
                [
                    "strategy": "graduated", "metric": "calls",
                    "tiers": [["upTo": 100, "rate": "0.01"], ["upTo": 300, "rate": "0.005"], ["rate": "0.001"]],
                ],
                ["strategy": "token_multiplier", "rates": ["input": "0.000001", "output": "0.000004"]],
            ],
        ]
        let tools = ["search", "transform", "fetch", "rank"]
        let log: [JSONValue] = (0..<400).map { n in
            if n % 5 == 0 {
                return [
                    "eventId": .string("log-\(n)"), "type": "token_consumption", "occurredAt": Self.at(hoursAgo: 1),
                    "properties": [
                        "inputTokens": .integer(Int64(n * 37 % 1000 + 1)), "outputTokens": .integer(Int64(n % 97)),
                        "model": "m",
                    ],
                ]
            }
            return Self.invocation(
                "log-\(n)", tool: tools[n % 4], hoursAgo: 1, extra: ["quantity": .integer(Int64(1 + n % 3))])
        }
        // A fixed shuffle (a linear congruential generator), so that a failure can be replayed.
        var shuffled = log
        var seed: UInt64 = 42
        for index in stride(from: shuffled.count - 1, to: 0, by: -1) {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            shuffled.swapAt(index, Int(seed >> 33) % (index + 1))
        }
        let server = try await Self.start(storageURL, clock: ManualClock(Self.now))
        do {
            var summaries: [JSONValue] = []
            for (order, batchSize) in [(log, 100), (shuffled, 37)] {
                let world = try await Fixture.make(on: server, name: "shuffle-\(UUID().uuidString)", plan: plan)
                let agent = try await server.connect(token: world.agentToken)
                var batches = stride(from: 0, to: order.count, by: batchSize).map {
                    JSONValue.array(Array(order[$0..<min($0 + batchSize, order.count)]))
                }
                if batchSize == 37 { batches.insert(batches[3], at: 7) }  // a batch sent again
                for batch in batches {
                    let statuses = Self.statuses(try await agent.call("events.ingest", ["events": batch]))
                    #expect(statuses.allSatisfy { $0 == "accepted" || $0 == "duplicate" }, "\(statuses)")
                }
                let op = try await server.connect(token: world.operatorToken)
                summaries.append(try await op.call("usage.summary", ["groupBy": ["tool"]]))
            }
            // Per tool, the counts are the same; the cost only in all: a tiered price is the tier an event's turn
            // fell in, so which tool paid which tier depends on the order — the period's total does not.
            func counts(_ summary: JSONValue) -> [JSONValue] {
                (summary["rows"]?.arrayValue ?? []).map { row in
                    var fields = row.objectValue ?? [:]
                    fields["cost"] = nil
                    return .object(fields)
                }
            }
            #expect(counts(summaries[0]) == counts(summaries[1]), "\(summaries)")
            #expect(summaries[0]["total"] == summaries[1]["total"], "\(summaries)")
            #expect(summaries[0]["total"]?["calls"] == 320, "the 80 token events are no calls")
        } catch {
            Issue.record(error)
        }
        try await server.stop()
    }

    @Test func sessionEvents_openAndCloseTheSession_andCustomMetricsArePricedByThePlan() async throws {
        let plan: JSONValue = [
            "name": "gpu", "currency": "USD", "metrics": ["gpu_seconds"],
            "charges": [["strategy": "per_tool", "rates": ["gpu_seconds": "0.01", "*": "0.002"]]],
        ]
        try await TestServer.with(clock: ManualClock(Self.now)) { server in
            let world = try await Fixture.make(on: server, plan: plan)
            let agent = try await server.connect(token: world.agentToken)
            let session = { (id: String, action: String) -> JSONValue in
                [
                    "eventId": .string(id), "type": "session", "occurredAt": Self.at(hoursAgo: 0),
                    "sessionId": "job-1", "properties": ["action": .string(action)],
                ]
            }
            let answer = try await agent.call(
                "events.ingest",
                [
                    "events": [
                        session("s-close", "close"),  // applied after the batch's charges
                        Self.invocation("g1", extra: ["type": "gpu_seconds", "quantity": 30, "sessionId": "job-1"]),
                        session("s-start", "start"),
                        [
                            "eventId": "tk1", "type": "token_consumption", "occurredAt": Self.at(hoursAgo: 0),
                            "sessionId": "job-1", "properties": ["inputTokens": 10, "model": "m"],
                        ],
                    ]
                ])
            #expect(Self.statuses(answer) == ["accepted", "accepted", "accepted", "accepted"], "\(answer)")
            #expect(answer["results"]?.arrayValue?[1]["cost"] == "0.3")
            let closed = try await agent.call("session.get", ["sessionId": "job-1"])
            #expect(closed["state"] == "CLOSED" && closed["calls"] == 1 && closed["cost"] == "0.3", "\(closed)")
            #expect(closed["inputTokens"] == 10, "the token event counts in the session's tokens, not its calls")
            let again = try await agent.call("events.ingest", ["events": [session("s-close", "close")]])
            #expect(Self.statuses(again) == ["duplicate"], "\(again)")
            // A session event keeps its provenance too.
            let shown = try await agent.call("events.get", ["eventId": "s-close"])
            #expect(shown["type"] == "session" && shown["source"] == "rpc" && shown["status"] == "accepted", "\(shown)")
            #expect(shown["gates"] == ["schema", "idempotency", "timestamp", "lateness"])
            #expect(shown["occurredAt"] == Self.at(hoursAgo: 0) && shown["context"]?["sessionId"] == "job-1")
            #expect(shown["payload"] == session("s-close", "close"), "the event as sent")
        }
    }
}
