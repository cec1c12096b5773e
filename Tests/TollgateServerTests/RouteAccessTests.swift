import Foundation
import Logging
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting
import TollgateWire

@testable import TollgateServer

/// Every method is registered with who may call it, and the router holds every caller to it before the
/// handler runs: a caller of the wrong kind is refused whatever the params.
@Suite struct RouteAccessTests {
    static let routes = Router(logger: Logger(label: "test")).routes

    @Test func everyRouteRefusesCallersItWasNotDeclaredFor() async throws {
        try await TestServer.with { server in
            do {
                let world = try await Fixture.make(on: server)
                let anonymous = try await server.connect()
                let agent = try await server.connect(token: world.agentToken)
                let op = try await server.connect(token: world.operatorToken)
                for (rpc, route) in Self.routes.sorted(by: { $0.key.rawValue < $1.key.rawValue })
                where route.access != .anyone {
                    let method = rpc.rawValue
                    let unauthenticated = await reason { try await anonymous.call(method, [:]) }
                    #expect(unauthenticated == "UNAUTHENTICATED", "\(method) before auth.hello")
                    switch route.access {
                    case .anyone:
                        break
                    case .root:
                        #expect(
                            await reason { try await op.call(method, [:]) } == "FORBIDDEN", "\(method) by an operator")
                        #expect(
                            await reason { try await agent.call(method, [:]) } == "FORBIDDEN", "\(method) by an agent")
                    case .anyOperator, .tenantOperator:
                        #expect(
                            await reason { try await agent.call(method, [:]) } == "FORBIDDEN", "\(method) by an agent")
                    case .agent:
                        #expect(
                            await reason { try await op.call(method, [:]) } == "FORBIDDEN", "\(method) by an operator")
                    case .agentOrOperator:
                        break
                    }
                }
                #expect(Set(Self.routes.keys) == Set(RPCMethod.allCases), "every method has a route")
            } catch {
                Issue.record(error)
            }
        }
    }

    /// Every method, called on the tenant's own objects by a credential holding every scope but the ones the
    /// method takes, is `FORBIDDEN` naming the scope it needs, and the tenant reads the same afterwards; called by a
    /// credential holding just one of them, it is not refused for its scope.
    @Test func everyRouteRefusesAPrincipalWithoutItsScope_andChangesNothing() async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-01T09:00:00Z")!)
        try await TestServer.with(clock: clock) { server in
            let (world, objects) = try await TenantWalkTests.tenantB(on: server, clock: clock)
            let before = try await TenantWalkTests.state(of: world, objects, on: server)
            let op = try await server.connect(token: world.operatorToken)
            var connections: [[String]: TollgateConnection] = [:]
            func holding(_ scopes: [String], agent: Bool) async throws -> TollgateConnection {
                let key = [agent ? "agent" : "operator"] + scopes.sorted()
                if let open = connections[key] { return open }
                let issued =
                    agent
                    ? try await op.call(
                        "credentials.issue",
                        [
                            "agentId": .string(world.agentId), "scopes": .array(scopes.map(JSONValue.string)),
                            "ttlSeconds": 600,
                        ])
                    : try await op.call(
                        "operators.issue", ["name": "walk", "scopes": .array(scopes.map(JSONValue.string))])
                let connection = try await server.connect(token: issued["token"]!.stringValue!)
                connections[key] = connection
                return connection
            }
            var checks: [(rpc: RPCMethod, who: String, needs: [String], agent: Bool)] = []
            for (rpc, route) in Self.routes.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                switch route.access {
                case .tenantOperator(let scopes): checks.append((rpc, "operator", scopes, false))
                case .agent(let scopes): checks.append((rpc, "agent", scopes, true))
                case .agentOrOperator(let agentScopes, let operatorScopes):
                    checks += [(rpc, "agent", agentScopes, true), (rpc, "operator", operatorScopes, false)]
                case .anyone, .root, .anyOperator: continue
                }
            }
            #expect(checks.count >= 50, "\(checks.count) method and principal pairs walked")
            for (rpc, who, needs, agent) in checks {
                let every = agent ? AgentScope.all : OperatorScope.every.subtracting([OperatorScope.all])
                let others = every.subtracting(needs).sorted()
                let params = TenantWalkTests.params(rpc, ids: objects.ids, key: "scope-\(who)")
                let refused = await rpcError { try await holding(others, agent: agent).call(rpc.rawValue, params) }
                #expect(refused?.reason == "FORBIDDEN", "\(rpc.rawValue) by an \(who) holding \(others)")
                #expect(
                    needs.allSatisfy { refused?.message.contains($0) == true },
                    "\(rpc.rawValue): \(String(describing: refused?.message))")
            }
            #expect(try await TenantWalkTests.state(of: world, objects, on: server) == before, "nothing changed")
            for (rpc, who, needs, agent) in checks {
                let params = TenantWalkTests.params(rpc, ids: objects.ids, key: "allowed-\(who)")
                for scope in needs {
                    let allowed = await rpcError { try await holding([scope], agent: agent).call(rpc.rawValue, params) }
                    #expect(
                        allowed?.message.contains("needs scope") != true,
                        "\(rpc.rawValue) by an \(who) holding \(scope): \(String(describing: allowed?.message))")
                }
            }
        }
    }

    /// `docs/PROTOCOL.md`'s table of scopes is the routes' own: one row per method, the same scopes.
    @Test func theDocumentedScopeTable_isTheRoutes() throws {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "../../docs/PROTOCOL.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        let start = try #require(text.range(of: "<!-- scopes"))
        let end = try #require(text.range(of: "<!-- /scopes -->"))
        var documented: [String: (agent: String, operator: String)] = [:]
        for line in text[start.upperBound..<end.lowerBound].split(separator: "\n") where line.hasPrefix("| `") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            documented[cells[0].trimmingCharacters(in: CharacterSet(charactersIn: "`"))] = (cells[1], cells[2])
        }
        func spelled(_ scopes: [String]) -> String { scopes.map { "`\($0)`" }.joined(separator: ", ") }
        for (rpc, route) in Self.routes {
            let expected: (agent: String, operator: String)
            switch route.access {
            case .anyone: expected = ("anyone", "anyone")
            case .root: expected = ("—", "root only")
            case .anyOperator: expected = ("—", "any")
            case .tenantOperator(let scopes): expected = ("—", spelled(scopes))
            case .agent(let scopes): expected = (spelled(scopes), "—")
            case .agentOrOperator(let agent, let op): expected = (spelled(agent), spelled(op))
            }
            let row = documented[rpc.rawValue]
            #expect(
                row?.agent == expected.agent && row?.operator == expected.operator,
                "\(rpc.rawValue): \(String(describing: row))")
        }
        #expect(Set(documented.keys) == Set(Self.routes.keys.map(\.rawValue)), "a row per method, no more")
    }
}
