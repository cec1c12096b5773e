import Foundation
import Synchronization
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

/// `subscriptions.swap`: a tenant's plan changes without a restart, and every call is rated by exactly one
/// version, the one in force at the call's millisecond.
@Suite struct PlanSwapTests {
    static func perTool(_ rate: String) -> JSONValue {
        ["name": "search", "currency": "USD", "charges": [["strategy": "per_tool", "rates": ["*": .string(rate)]]]]
    }

    /// On SQLite the swap's write takes a while: calls rated during it must already see the swap.
    @Test(arguments: [
        "memory:",
        "sqlite:"
            + FileManager.default.temporaryDirectory
            .appendingPathComponent("tollgate-swap-\(UUID().uuidString).sqlite").path,
    ])
    func callsRacingASwapAreEachRatedByTheVersionInForceAtTheirTime(storageURL: String) async throws {
        try await TestServer.with(storageURL: storageURL) { server in
            let world = try await Fixture.make(on: server, plan: Self.perTool("1"))
            let op = try await server.connect(token: world.operatorToken)
            let v2 = try await op.call("plans.put", Self.perTool("2"))
            #expect(v2["version"] == 2)
            let agents = try await (0..<8).asyncMap { _ in try await server.connect(token: world.agentToken) }
            // The swap is sent once 40 calls are answered, and each agent calls until it has made 20 calls after the
            // swap was answered (at most 400): the swap lands mid-run however slow or fast the machine is.
            let swapped = SwapFlag()
            let answers = try await withThrowingTaskGroup(of: [JSONValue].self) { group in
                for (index, agent) in agents.enumerated() {
                    group.addTask {
                        var answers: [JSONValue] = []
                        var afterSwap = 0
                        for call in 0..<400 where afterSwap < 20 {
                            answers.append(try await agent.call("meter.verify", verifyParams("c\(index)-\(call)")))
                            swapped.calls.add(1, ordering: .relaxed)
                            if swapped.value.load(ordering: .acquiring) { afterSwap += 1 }
                        }
                        return answers
                    }
                }
                group.addTask {
                    while swapped.calls.load(ordering: .relaxed) < 40 { try await Task.sleep(for: .milliseconds(1)) }
                    let answer = try await op.call(
                        "subscriptions.swap", ["subscriptionId": .string(world.subscriptionId)])
                    swapped.value.store(true, ordering: .releasing)
                    return [answer]
                }
                var all: [JSONValue] = []
                for try await part in group { all += part }
                return all
            }
            let swap = try #require(answers.first { $0["effectiveAt"] != nil })
            #expect(swap["version"] == 2)
            let effectiveAt = try #require(Timestamp.parse(swap["effectiveAt"]!.string!))
            let calls = answers.filter { $0["receiptId"] != nil }
            #expect(calls.count >= 160)
            var before = 0
            var after = 0
            for call in calls {
                let at = try #require(Timestamp.parse(call["at"]!.string!))
                let expected = at >= effectiveAt ? "2" : "1"
                #expect(call["cost"]?.string == expected, "call at \(call["at"]!) vs swap at \(swap["effectiveAt"]!)")
                if at >= effectiveAt { after += 1 } else { before += 1 }
            }
            #expect(before > 0 && after > 0, "the swap landed mid-run (\(before) before, \(after) after)")
        }
    }

    @Test func aFutureSwapTakesEffectAtItsTime_andSurvivesARestart() async throws {
        try await TestServer.scope { servers in
            let clock = ManualClock(Date(timeIntervalSince1970: 1_795_000_000))
            let path = FileManager.default.temporaryDirectory.appendingPathComponent(
                "tollgate-\(UUID().uuidString).sqlite"
            )
            .path
            var server = try await servers.start(storageURL: "sqlite:" + path, clock: clock)
            let world = try await Fixture.make(on: server, plan: Self.perTool("1"))
            var op = try await server.connect(token: world.operatorToken)
            _ = try await op.call("plans.put", Self.perTool("3"))
            let at = Timestamp.format(clock.now().addingTimeInterval(3600))
            #expect(
                try await op.call(
                    "subscriptions.swap",
                    [
                        "subscriptionId": .string(world.subscriptionId), "version": 2,
                        "effectiveAt": .string(at),
                    ])["effectiveAt"]?.string == at)
            var agent = try await server.connect(token: world.agentToken)
            #expect(try await agent.call("meter.verify", verifyParams("k1"))["cost"] == "1")
            try await server.stop()

            server = try await servers.start(storageURL: "sqlite:" + path, clock: clock)
            agent = try await server.connect(token: world.agentToken)
            clock.advance(seconds: 3599.999)
            #expect(try await agent.call("meter.verify", verifyParams("k2"))["cost"] == "1")
            clock.advance(seconds: 0.001)
            #expect(try await agent.call("meter.verify", verifyParams("k3"))["cost"] == "3")
            op = try await server.connect(token: world.operatorToken)
            // The past cannot be re-rated; other currencies and unknown ids are refused.
            #expect(
                await rpcError {
                    try await op.call(
                        "subscriptions.swap",
                        [
                            "subscriptionId": .string(world.subscriptionId),
                            "effectiveAt": "2020-01-01T00:00:00.000Z",
                        ])
                }?.data?["field"] == "effectiveAt")
            let euro = try await op.call(
                "plans.put",
                ["name": "euro", "currency": "EUR", "charges": [["strategy": "per_tool", "rates": ["*": "1"]]]])
            #expect(
                await rpcError {
                    try await op.call(
                        "subscriptions.swap",
                        [
                            "subscriptionId": .string(world.subscriptionId),
                            "planId": euro["planId"]!,
                        ])
                }?.data?["field"] == "planId")
            #expect(
                await reason { try await op.call("subscriptions.swap", ["subscriptionId": "sub_nope"]) } == "NOT_FOUND")
            #expect(
                await reason {
                    try await op.call(
                        "subscriptions.swap", ["subscriptionId": .string(world.subscriptionId), "version": 9])
                } == "NOT_FOUND")
            try await server.stop()
        }
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}

private final class SwapFlag: Sendable {
    let value = Atomic<Bool>(false)
    let calls = Atomic<Int>(0)
}
