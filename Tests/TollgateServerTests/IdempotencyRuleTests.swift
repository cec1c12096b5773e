import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgatePostgres
import TollgateSQLite
import TollgateStorage
import TollgateTesting

/// The one idempotency rule, walked through every writing method on every store: the same key with the same
/// method and params replays the first answer (`replayed: true`); other params or another method is
/// `IDEMPOTENCY_MISMATCH` naming what differs; the same key in another tenant is that tenant's own first call; a
/// key whose first call is still being written is `IN_PROGRESS`; and all of it holds after a restart.
@Suite struct IdempotencyRuleTests {
    /// The gate of `GatedStore` that holds a method's write in flight.
    enum Gate: Sendable { case commits, holds, writes }

    /// One call of a writing method: its params, the same params with one field changed, and that field.
    struct Call: Sendable {
        var params: JSONValue
        var differing: JSONValue
        var field: String
        /// The key the call is stored under (`commit:<reservation>` for `meter.commit`).
        var key: String
    }

    struct World: Sendable {
        var fixture: Fixture
        var op: TollgateConnection
        var agent: TollgateConnection

        /// A new hold of the world's agent.
        func reservation() async throws -> String {
            try await agent.call(
                "meter.authorize", ["tool": "search", "idempotencyKey": .string("hold-\(UUID().uuidString)")]
            )["reservationId"]!.stringValue!
        }
    }

    struct Method: Sendable, CustomTestStringConvertible {
        var name: String
        var byAgent: Bool
        var gate: Gate
        /// Makes what a call needs and returns it, for `key`.
        var prepare: @Sendable (World, String) async throws -> Call
        var testDescription: String { name }
    }

    static func with(_ params: JSONValue, _ changes: [String: JSONValue]) -> JSONValue {
        var object = params.objectValue ?? [:]
        for (field, value) in changes { object[field] = value }
        return .object(object)
    }

    static func call(_ params: JSONValue, key: String, changing field: String, to value: JSONValue) -> Call {
        let keyed = with(params, ["idempotencyKey": .string(key)])
        return Call(params: keyed, differing: with(keyed, [field: value]), field: field, key: key)
    }

    static let methods: [Method] = [
        Method(name: "meter.verify", byAgent: true, gate: .commits) { _, key in
            call(["tool": "search"], key: key, changing: "quantity", to: 2)
        },
        Method(name: "meter.authorize", byAgent: true, gate: .holds) { _, key in
            call(["tool": "search"], key: key, changing: "quantity", to: 2)
        },
        Method(name: "meter.commit", byAgent: true, gate: .commits) { world, _ in
            let id = try await world.reservation()
            let params: JSONValue = ["reservationId": .string(id)]
            return Call(
                params: params, differing: with(params, ["quantity": 2]), field: "quantity", key: "commit:\(id)")
        },
        Method(name: "meter.release", byAgent: true, gate: .writes) { world, key in
            let (id, other) = (try await world.reservation(), try await world.reservation())
            return call(["reservationId": .string(id)], key: key, changing: "reservationId", to: .string(other))
        },
        Method(name: "session.open", byAgent: true, gate: .writes) { _, key in
            call(["sessionId": .string("ses-\(key)")], key: key, changing: "metadata", to: ["a": 1])
        },
        Method(name: "session.close", byAgent: true, gate: .writes) { world, key in
            _ = try await world.agent.call("session.open", ["sessionId": .string("ses-\(key)")])
            return call(["sessionId": .string("ses-\(key)")], key: key, changing: "outcome", to: "FAILED")
        },
        Method(name: "customers.create", byAgent: false, gate: .writes) { _, key in
            call(["name": "C"], key: key, changing: "name", to: "D")
        },
        Method(name: "teams.create", byAgent: false, gate: .writes) { world, key in
            call(["customerId": .string(world.fixture.customerId), "name": "T"], key: key, changing: "name", to: "U")
        },
        Method(name: "credentials.revoke", byAgent: false, gate: .writes) { world, key in
            let issued = try await world.op.call(
                "credentials.issue", ["agentId": .string(world.fixture.agentId), "ttlSeconds": 60])
            return call(
                ["credentialId": issued["credentialId"]!], key: key, changing: "credentialId", to: "cred_other")
        },
        Method(name: "operators.revoke", byAgent: false, gate: .writes) { world, key in
            let issued = try await world.op.call("operators.issue", ["name": "ci", "scopes": ["caps:write"]])
            return call(
                ["credentialId": issued["credentialId"]!], key: key, changing: "credentialId", to: "opc_other")
        },
        Method(name: "plans.put", byAgent: false, gate: .writes) { _, key in
            let plan: JSONValue = [
                "name": .string("plan-\(key)"), "currency": "USD",
                "charges": [["strategy": "per_tool", "rates": ["*": "1"]]],
            ]
            return call(plan, key: key, changing: "currency", to: "EUR")
        },
        Method(name: "subscriptions.create", byAgent: false, gate: .writes) { world, key in
            let params: JSONValue = [
                "customerId": .string(world.fixture.customerId), "planId": .string(world.fixture.planId),
                "startsAt": "2030-01-01T00:00:00Z",
            ]
            return call(params, key: key, changing: "startsAt", to: "2031-01-01T00:00:00Z")
        },
        Method(name: "subscriptions.swap", byAgent: false, gate: .writes) { world, key in
            call(["subscriptionId": .string(world.fixture.subscriptionId)], key: key, changing: "version", to: 1)
        },
        Method(name: "caps.set", byAgent: false, gate: .writes) { world, key in
            let params: JSONValue = [
                "scope": "agent", "scopeId": .string(world.fixture.agentId), "limit": "100", "period": "month",
            ]
            return call(params, key: key, changing: "limit", to: "200")
        },
        Method(name: "sessions.configure", byAgent: false, gate: .writes) { _, key in
            call(["idleAfterMs": 60_000], key: key, changing: "idleAfterMs", to: 120_000)
        },
    ]

    /// The store behind `url`, opened the way the server opens it.
    static func open(_ url: String) async throws -> any TollgateStore {
        if url.hasPrefix("sqlite:") { return try SQLiteStore(path: String(url.dropFirst("sqlite:".count))) }
        if url.hasPrefix("postgres") { return try await PostgresStore(url: url) }
        return InMemoryStore()
    }

    static func without(_ field: String, _ value: JSONValue) -> JSONValue {
        var object = value.objectValue ?? [:]
        object[field] = nil
        return .object(object)
    }

    @Test(arguments: methods)
    func everyWritingMethod_keepsTheRule(method: Method) async throws {
        for url in storageBackends("rule-\(method.name)") {
            try await walk(method, on: url)
        }
    }

    func walk(_ method: Method, on url: String) async throws {
        try await TestServer.scope { servers in
            let store = GatedStore(wrapping: try await Self.open(url))
            var server = try await servers.start(store: store)
            var firstCall: Call?
            var firstAnswer: JSONValue?
            var fixture: Fixture?
            do {
                let made = try await Fixture.make(on: server)
                fixture = made
                let world = World(
                    fixture: made, op: try await server.connect(token: made.operatorToken),
                    agent: try await server.connect(token: made.agentToken))
                let caller = method.byAgent ? world.agent : world.op
                let call = try await method.prepare(world, "k-\(UUID().uuidString)")

                // 1. The same key, method and params: the first answer, replayed.
                let first = try await caller.call(method.name, call.params)
                let again = try await caller.call(method.name, call.params)
                #expect(again["replayed"] == true, "\(method.name) on \(url): \(again)")
                #expect(Self.without("replayed", again) == first, "\(method.name) on \(url)")
                firstCall = call
                firstAnswer = first

                // 1b. Another tenant with the very same key: a first call of its own, never this one's answer.
                let made2 = try await Fixture.make(on: server, name: "other")
                let world2 = World(
                    fixture: made2, op: try await server.connect(token: made2.operatorToken),
                    agent: try await server.connect(token: made2.agentToken))
                let theirs = try await method.prepare(world2, call.key)
                let theirAnswer = try await (method.byAgent ? world2.agent : world2.op).call(method.name, theirs.params)
                #expect(theirAnswer["replayed"] == nil, "\(method.name) on \(url): \(theirAnswer)")

                // 2. Other params: a mismatch naming the field.
                let differing = try #require(await rpcError { try await caller.call(method.name, call.differing) })
                #expect(differing.reason == "IDEMPOTENCY_MISMATCH", "\(method.name) on \(url): \(differing)")
                #expect(differing.data?["fields"]?.arrayValue?.contains(.string(call.field)) == true, "\(differing)")

                // 3. Another method with the same key: a mismatch naming the method.
                let other = method.name == "meter.verify" ? "meter.authorize" : "meter.verify"
                let otherMethod = try #require(
                    await rpcError {
                        try await world.agent.call(other, ["tool": "search", "idempotencyKey": .string(call.key)])
                    })
                #expect(otherMethod.reason == "IDEMPOTENCY_MISMATCH", "\(method.name) on \(url): \(otherMethod)")
                #expect(otherMethod.data?["fields"] == ["method"], "\(method.name) on \(url)")

                // 4. A key whose first call is still being written: IN_PROGRESS, then the first call's answer.
                let held = try await method.prepare(world, "k-\(UUID().uuidString)")
                let before = (store.entriesAtCommit, store.holdsAtInsert, store.writesStarted)
                switch method.gate {
                case .commits: store.closeGate()
                case .holds: store.closeHoldGate()
                case .writes: store.closeWriteGate()
                }
                let inFlight = Task { try await caller.call(method.name, held.params) }
                await eventually("\(method.name) held at the gate") {
                    switch method.gate {
                    case .commits: store.entriesAtCommit > before.0
                    case .holds: store.holdsAtInsert > before.1
                    case .writes: store.writesStarted > before.2
                    }
                }
                let busy = await rpcError { try await caller.call(method.name, held.params) }
                #expect(busy?.reason == "IN_PROGRESS", "\(method.name) on \(url): \(String(describing: busy))")
                store.openGate()
                store.openHoldGate()
                store.openWriteGate()
                let answered = try await inFlight.value
                #expect(answered["replayed"] == nil, "\(method.name) on \(url)")
            } catch {
                Issue.record("\(method.name) on \(url): \(error)")
            }
            try await server.stop()

            // 5. After a restart (a store that keeps what it wrote): the same replay, and the same mismatch.
            guard !url.hasPrefix("memory"), let call = firstCall, let first = firstAnswer, let fixture else { return }
            server = try await servers.start(store: try await Self.open(url))
            do {
                let caller = try await server.connect(
                    token: method.byAgent ? fixture.agentToken : fixture.operatorToken)
                let again = try await caller.call(method.name, call.params)
                #expect(again["replayed"] == true, "\(method.name) on \(url) after a restart")
                #expect(Self.without("replayed", again) == first, "\(method.name) on \(url) after a restart")
                let differing = await rpcError { try await caller.call(method.name, call.differing) }
                #expect(differing?.reason == "IDEMPOTENCY_MISMATCH", "\(method.name) on \(url) after a restart")
            } catch {
                Issue.record("\(method.name) on \(url) after a restart: \(error)")
            }
            try await server.stop()
        }
    }
}
