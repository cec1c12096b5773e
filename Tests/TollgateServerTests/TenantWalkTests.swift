import Foundation
import Logging
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting
import TollgateWire

@testable import TollgateServer

/// Every method, called by tenant A's operator and agent with tenant B's real object ids — and again with ids
/// guessed in the same shapes — is refused or answers about A alone: no answer holds any of B's ids, a real id
/// and a guessed one get the same answer (nothing tells whether B's object exists), and B's state reads the same
/// afterwards.
@Suite struct TenantWalkTests {
    struct Objects {
        var ids: [String: String]
    }

    /// Tenant B with one of each object: customer, team, agent, credential (and a revoked one), operator
    /// credential, plan, subscription, session, hold, invoice, event, cap, credit grant, discount, product.
    static func tenantB(on server: TestServer, clock: ManualClock) async throws -> (Fixture, Objects) {
        let b = try await Fixture.make(on: server, name: "b")
        let op = try await server.connect(token: b.operatorToken)
        let agent = try await server.connect(token: b.agentToken)
        var ids: [String: String] = [
            "tenantId": b.tenantId, "customerId": b.customerId, "teamId": b.teamId, "agentId": b.agentId,
            "credentialId": b.credentialId, "planId": b.planId, "subscriptionId": b.subscriptionId,
        ]
        ids["sessionId"] = try await agent.call("meter.verify", verifyParams("b-1", tool: "search"))["sessionId"]!
            .string!
        ids["reservationId"] =
            try await agent.call("meter.authorize", ["tool": "search", "idempotencyKey": "b-hold"])["reservationId"]!
            .string!
        _ = try await agent.call(
            "events.ingest",
            [
                "events": [
                    [
                        "eventId": "b-event", "type": "tool_invocation", "tool": "search",
                        "occurredAt": .string(Timestamp.format(clock.now())),
                    ]
                ]
            ])
        ids["eventId"] = "b-event"
        ids["capId"] = try await op.call(
            "caps.set", ["scope": "customer", "scopeId": .string(b.customerId), "limit": "100", "period": "month"])[
                "capId"]!.string!
        ids["grantId"] = try await op.call(
            "credits.grant", ["customerId": .string(b.customerId), "amount": "5", "kind": "prepaid"])["grantId"]!
            .string!
        ids["discountId"] = try await op.call(
            "discounts.create", ["customerId": .string(b.customerId), "percentOff": "5"])["discountId"]!.string!
        ids["productId"] = try await op.call("products.create", ["name": "b-product", "type": "ai_agent"])[
            "productId"]!.string!
        ids["operatorCredentialId"] = try await op.call("operators.issue", ["name": "b-ci", "scopes": ["caps:write"]])[
            "credentialId"]!.string!
        let revoked = try await op.call(
            "credentials.issue", ["agentId": .string(b.agentId), "ttlSeconds": 5_184_000])["credentialId"]!
        _ = try await op.call("credentials.revoke", ["credentialId": revoked])
        ids["revokedCredentialId"] = revoked.string!
        clock.advance(seconds: 40 * 86_400)
        ids["invoiceId"] = try await op.call("periods.close", ["subscriptionId": .string(b.subscriptionId)])[
            "invoiceId"]!.string!
        return (b, Objects(ids: ids))
    }

    /// Everything B's operator can read of its own tenant, to compare before and after the walk.
    static func state(of b: Fixture, _ objects: Objects, on server: TestServer) async throws -> [JSONValue] {
        let op = try await server.connect(token: b.operatorToken)
        let ids = objects.ids
        var reads: [JSONValue] = []
        for (method, params) in [
            ("usage.summary", [:]), ("invoices.list", [:]), ("caps.list", [:]), ("products.list", [:]),
            ("plans.list", [:]), ("sessions.list", [:]),
            ("credits.balance", ["customerId": ids["customerId"]!]),
            ("discounts.list", ["customerId": ids["customerId"]!]),
            ("invoices.get", ["invoiceId": ids["invoiceId"]!]),
            ("events.get", ["eventId": ids["eventId"]!]),
            ("session.get", ["sessionId": ids["sessionId"]!]),
        ] as [(String, [String: String])] {
            var answer = try await op.call(method, .object(params.mapValues(JSONValue.string)))
            // What changes with the clock alone.
            if var fields = answer.objectValue {
                fields["asOf"] = nil
                answer = .object(fields)
            }
            reads.append(answer)
        }
        return reads
    }

    /// Params naming B's objects (`ids`), plus what the methods need besides, so that a method gets as far as
    /// looking the object up.
    static func params(_ method: RPCMethod, ids: [String: String], key: String) -> JSONValue {
        var fields: [String: JSONValue] = ids.mapValues(JSONValue.string)
        fields["tenantId"] = nil
        fields["idempotencyKey"] = .string("walk-\(key)-\(method.rawValue)")
        fields["name"] = "walk"
        fields["tool"] = "search"
        fields["lineId"] = "L1"
        fields["amount"] = "1"
        fields["kind"] = "prepaid"
        fields["percentOff"] = "5"
        fields["type"] = "ai_agent"
        fields["scope"] = "customer"
        fields["scopeId"] = ids["customerId"].map(JSONValue.string)
        fields["limit"] = method == .capsSet ? "1" : 10
        fields["ttlSeconds"] = 60
        fields["scopes"] = ["meter:write"]
        fields["token"] = "TGO-walk"
        fields["tools"] = ["search"]
        if method == .capsSet { fields["period"] = "month" }
        if method.rawValue.hasPrefix("operators.") {
            fields["credentialId"] = ids["operatorCredentialId"].map(JSONValue.string)
        }
        return .object(fields)
    }

    /// The same shapes with ids that exist nowhere.
    static func guessed(_ ids: [String: String]) -> [String: String] {
        ids.mapValues { id in
            guard let underscore = id.firstIndex(of: "_") else { return id + "-guess" }
            return String(id[...underscore])
                + String(
                    repeating: "z",
                    count: id.count
                        - id.distance(
                            from: id.startIndex, to: underscore) - 1)
        }
    }

    /// An answer as compared between a real and a guessed id: a success is a success (it names objects of A made
    /// for it), an error is compared with the id itself taken out of its message.
    static func normalized(_ outcome: String, ids: [String: String]) -> String {
        if outcome.hasPrefix("ok") { return "ok" }
        var text = outcome
        for id in ids.values.sorted(by: { $0.count > $1.count }) where id.count > 3 {
            text = text.replacingOccurrences(of: id, with: "<id>")
        }
        return text
    }

    static func outcome(_ connection: TollgateConnection, _ method: RPCMethod, _ params: JSONValue) async -> String {
        do {
            let answer = try await connection.call(method.rawValue, params)
            return "ok " + JSONCodec.string(answer)
        } catch let error as RPCError {
            return "error \(error.reason ?? "\(error.code)"): \(error.message)"
        } catch {
            return "error \(error)"
        }
    }

    @Test func everyMethodAgainstAnotherTenantsObjects_isRefusedAndLeaksNothing() async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-01T09:00:00Z")!)
        try await TestServer.with(clock: clock) { server in
            let (b, objects) = try await Self.tenantB(on: server, clock: clock)
            let a = try await Fixture.make(on: server, name: "a")
            let before = try await Self.state(of: b, objects, on: server)
            let operatorA = try await server.connect(token: a.operatorToken)
            let agentA = try await server.connect(token: a.agentToken)
            let routes = Router(logger: Logger(label: "walk")).routes
            // Session and event ids are names a caller chooses in its own tenant: A may name its own session as B
            // named one (B's stays B's, which the state check below shows). Every other id is made by the server.
            let bIds = Set(objects.ids.filter { $0.key != "sessionId" && $0.key != "eventId" }.values)
            let guessedIds = Self.guessed(objects.ids)
            var walked = 0
            for method in RPCMethod.allCases.sorted(by: { $0.rawValue < $1.rawValue }) {
                guard let access = routes[method]?.access, access != .anyone, access != .root else { continue }
                var callers: [(String, TollgateConnection)] = []
                switch access {
                case .agent: callers = [("agent", agentA)]
                case .agentOrOperator: callers = [("operator", operatorA), ("agent", agentA)]
                default: callers = [("operator", operatorA)]
                }
                for (who, caller) in callers {
                    walked += 1
                    let real = await Self.outcome(
                        caller, method, Self.params(method, ids: objects.ids, key: "real-\(who)"))
                    for id in bIds where real.hasPrefix("ok") && real.contains(id) {
                        Issue.record("\(method.rawValue) by A's \(who) answered with B's \(id): \(real.prefix(300))")
                    }
                    let guess = await Self.outcome(
                        caller, method, Self.params(method, ids: guessedIds, key: "guess-\(who)"))
                    // Keys differ between the two calls only by what they name, so their answers must match.
                    let both = "\(real.prefix(300))\n\(guess.prefix(300))"
                    #expect(
                        Self.normalized(real, ids: objects.ids) == Self.normalized(guess, ids: guessedIds),
                        "\(method.rawValue) by A's \(who): B's object vs a guess:\n\(both)")
                    // Naming tenant B outright is refused.
                    if case .tenantOperator = access {
                        var named = Self.params(method, ids: objects.ids, key: "named").objectValue ?? [:]
                        named["tenantId"] = .string(b.tenantId)
                        named["idempotencyKey"] = .string("walk-named-\(method.rawValue)")
                        let outcome = await Self.outcome(caller, method, .object(named))
                        #expect(outcome.hasPrefix("error FORBIDDEN"), "\(method.rawValue) naming tenant B: \(outcome)")
                    }
                }
            }
            #expect(walked >= 50, "\(walked) method and caller pairs walked")
            #expect(try await Self.state(of: b, objects, on: server) == before, "B's state is as it was")
        }
    }
}
