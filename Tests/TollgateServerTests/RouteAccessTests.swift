import Foundation
import Logging
import Testing
import TollgateClient
import TollgateCore
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

    @Test func anAgentWithoutTheRoutesScope_isRefused() async throws {
        try await TestServer.with { server in
            do {
                let world = try await Fixture.make(on: server)
                let op = try await server.connect(token: world.operatorToken)
                let token = try await op.call(
                    "credentials.issue",
                    ["agentId": .string(world.agentId), "scopes": ["usage:read"], "ttlSeconds": 60])["token"]!
                let reader = try await server.connect(token: token.stringValue!)
                for (rpc, route) in Self.routes {
                    let method = rpc.rawValue
                    guard case .agent(let scope) = route.access else { continue }
                    #expect(scope == AgentScope.meterWrite)
                    let error = await rpcError { try await reader.call(method, [:]) }
                    #expect(error?.reason == "FORBIDDEN", "\(method)")
                    #expect(error?.message.contains("meter:write") == true, "\(method): \(String(describing: error))")
                }
            } catch {
                Issue.record(error)
            }
        }
    }
}
