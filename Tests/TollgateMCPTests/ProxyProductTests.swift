import Foundation
import Logging
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

@testable import TollgateMCP

/// The proxy's `--product` (its link's product) goes with every call it makes to Tollgate — holds, quotes and
/// spooled usage — so a customer subscribed to several products is charged on the right one, and a closed
/// catalog refuses its other tools before the server runs them.
@Suite struct ProxyProductTests {
    @Test func theProductGoesWithEveryCallOfTheProxy() async throws {
        try await TestServer.with { server in
            let root = try await server.connect(token: TestServer.rootToken)
            let op = try await server.connect(
                token: try await root.call("tenants.create", ["name": "p"])["operatorToken"]!.stringValue!)
            let search = try await op.call(
                "products.create",
                [
                    "name": "search-mcp", "type": "mcp_server", "closed": true,
                    "tools": [["name": "search", "estimate": ["quantity": 2]]],
                ])
            _ = try await op.call("products.create", ["name": "enrich", "type": "agentic_api"])
            let customer = try await op.call("customers.create", ["name": "c"])["customerId"]!
            let team = try await op.call("teams.create", ["customerId": customer, "name": "t"])["teamId"]!
            let agentId = try await op.call("agents.create", ["teamId": team, "name": "a"])["agentId"]!
            let plan = try await op.call("plans.put", Fixture.searchPlan)["planId"]!
            for product in ["search-mcp", "enrich"] {
                _ = try await op.call(
                    "subscriptions.create", ["customerId": customer, "planId": plan, "productId": .string(product)])
            }
            let token = try await op.call(
                "credentials.issue", ["agentId": agentId, "scopes": ["meter:write"], "ttlSeconds": 3600]
            )["token"]!.stringValue!
            let named = TollgateLink(address: server.address, token: token, product: "search-mcp")
            let unnamed = TollgateLink(address: server.address, token: token)
            defer {
                Task {
                    await named.close()
                    await unnamed.close()
                }
            }

            // A hold: on the named product, with its catalog's estimate (2 × 0.001); refused without a product.
            guard
                case .held(let reservationId) = await ProxyCalls.authorize(
                    link: named, tool: "search", key: "k1", sessionId: "mcp-1", ttlMs: nil,
                    retry: RetryPolicy(attempts: 1))
            else {
                Issue.record("not held")
                return
            }
            let agent = try await server.connect(token: token)
            _ = try await agent.call("meter.release", ["reservationId": .string(reservationId)])
            guard
                case .refused(let refusal) = await ProxyCalls.authorize(
                    link: unnamed, tool: "search", key: "k2", sessionId: "mcp-1", ttlMs: nil,
                    retry: RetryPolicy(attempts: 1))
            else {
                Issue.record("held without a product")
                return
            }
            #expect(refusal.reason == "VALIDATION_FAILED" && refusal.details["field"] == "product", "\(refusal)")
            guard
                case .refused(let outside) = await ProxyCalls.authorize(
                    link: named, tool: "transform", key: "k3", sessionId: "mcp-1", ttlMs: nil,
                    retry: RetryPolicy(attempts: 1))
            else {
                Issue.record("a tool outside the closed catalog was held")
                return
            }
            #expect(outside.details["field"] == "tool")

            // A quote, and usage spooled while Tollgate was away, on the same product.
            let logger = Logger(label: "test")
            let prices = await ProxyCalls.quote(link: named, tools: ["search"], sessionId: "mcp-1", logger: logger)
            #expect(prices != nil)
            let spool = try UsageSpoolTests.temporarySpool()
            let credential = SpoolDelivery.credential(ofToken: token)
            try spool.add(UsageSpoolTests.record("run-1", credential: credential, session: "mcp-2"))
            let report = try await SpoolDelivery.drain(spool, credential: credential, product: named.product) {
                try await named.connection()
            }
            #expect(report.delivered == 1 && report.refused == 0, "\(report)")
            let usage = try await op.call("usage.summary", ["groupBy": ["product"]])
            #expect(usage["rows"]?.arrayValue?.map { $0["product"] } == [search["productId"]], "\(usage)")
        }
    }
}
