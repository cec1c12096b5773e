import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

/// Products over the wire: a tenant sells two (an MCP server with a closed catalog, an agentic API with an open
/// one), a customer subscribes to both with a plan each, and every call names the product it is for — or is
/// refused until it does; closed catalogs refuse other tools; holds take the catalog's estimate; usage, margin,
/// revenue and invoices are per product; all of it survives a restart, and no other tenant sees any of it.
@Suite struct ProductTests {
    static let searchPlan: JSONValue = [
        "name": "search-plan", "currency": "USD",
        "charges": [["strategy": "per_tool", "rates": ["search": "0.25", "fetch": "0.1", "*": "0.5"]]],
    ]
    static let enrichPlan: JSONValue = [
        "name": "enrich-plan", "currency": "USD", "charges": [["strategy": "per_tool", "rates": ["*": "0.02"]]],
    ]

    struct World {
        var op: TollgateConnection
        var operatorToken: String
        var agent: TollgateConnection
        var agentToken: String
        var customerId: JSONValue
        var search: JSONValue
        var enrich: JSONValue
        var searchSubscription: JSONValue
        var enrichSubscription: JSONValue
    }

    static func world(on server: TestServer) async throws -> World {
        let root = try await server.connect(token: TestServer.rootToken)
        let operatorToken = try await root.call("tenants.create", ["name": "products"])["operatorToken"]!.string!
        let op = try await server.connect(token: operatorToken)
        let search = try await op.call(
            "products.create",
            [
                "name": "search-mcp", "type": "mcp_server", "closed": true,
                "tools": [
                    ["name": "search", "description": "Web search"],
                    ["name": "fetch", "description": "Fetch a page", "estimate": ["quantity": 3]],
                ],
            ])
        let enrich = try await op.call("products.create", ["name": "enrich", "type": "agentic_api"])
        let customerId = try await op.call("customers.create", ["name": "Kiwi"])["customerId"]!
        let team = try await op.call("teams.create", ["customerId": customerId, "name": "t"])["teamId"]!
        let agentId = try await op.call("agents.create", ["teamId": team, "name": "a"])["agentId"]!
        let searchPlan = try await op.call("plans.put", Self.searchPlan)["planId"]!
        let enrichPlan = try await op.call("plans.put", Self.enrichPlan)["planId"]!
        let searchSubscription = try await op.call(
            "subscriptions.create",
            ["customerId": customerId, "planId": searchPlan, "productId": "search-mcp", "period": ["cadence": "day"]])
        #expect(searchSubscription["productId"] == search["productId"], "named by its name, stored by its id")
        let enrichSubscription = try await op.call(
            "subscriptions.create",
            [
                "customerId": customerId, "planId": enrichPlan, "productId": enrich["productId"]!,
                "period": ["cadence": "day"],
            ])
        let token = try await op.call(
            "credentials.issue", ["agentId": agentId, "scopes": ["meter:write"], "ttlSeconds": 864_000])["token"]!
            .string!
        return World(
            op: op, operatorToken: operatorToken, agent: try await server.connect(token: token), agentToken: token,
            customerId: customerId, search: search, enrich: enrich,
            searchSubscription: searchSubscription["subscriptionId"]!,
            enrichSubscription: enrichSubscription["subscriptionId"]!)
    }

    static func verify(
        _ agent: TollgateConnection, _ tool: String, _ key: String, product: String?, session: String = "s1"
    ) async throws -> JSONValue {
        var params: [String: JSONValue] = [
            "tool": .string(tool), "idempotencyKey": .string(key), "sessionId": .string(session),
        ]
        if let product { params["product"] = .string(product) }
        return try await agent.call("meter.verify", .object(params))
    }

    @Test(arguments: storageBackends("products"))
    func callsNameTheirProduct_andAreBilledPerProduct(storage: String) async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-01T09:00:00Z")!)
        try await TestServer.scope { servers in
            var server = try await servers.start(storageURL: storage, clock: clock)
            let world = try await Self.world(on: server)
            #expect(world.search["closed"] == true && world.search["type"] == "mcp_server", "\(world.search)")

            // Subscribed to two products: a call must say which.
            let unnamed = await rpcError { try await Self.verify(world.agent, "search", "u1", product: nil) }
            #expect(unnamed?.reason == "VALIDATION_FAILED" && unnamed?.data?["field"] == "product", "\(unnamed!)")
            #expect(try await Self.verify(world.agent, "search", "a1", product: "search-mcp")["cost"] == "0.25")
            #expect(
                try await Self.verify(world.agent, "search", "a2", product: world.search["productId"]!.string)["cost"]
                    == "0.25", "by id as well as by name")
            // A closed catalog refuses a tool it does not list; an open one lets the plan's `*` price it.
            let outside = await rpcError {
                try await Self.verify(world.agent, "translate", "a3", product: "search-mcp")
            }
            #expect(outside?.reason == "VALIDATION_FAILED" && outside?.data?["field"] == "tool", "\(outside!)")
            #expect(try await Self.verify(world.agent, "translate", "b1", product: "enrich")["cost"] == "0.02")
            #expect(await reason { try await Self.verify(world.agent, "search", "x1", product: "nope") } == "NOT_FOUND")

            // A hold without an estimate takes the catalog's: fetch is expected to fetch 3 pages (0.30).
            let hold = try await world.agent.call(
                "meter.authorize",
                ["tool": "fetch", "idempotencyKey": "h1", "sessionId": "s1", "product": "search-mcp"])
            #expect(hold["held"] == "0.3", "\(hold)")
            // Events name their product for the whole batch.
            let ingested = try await world.agent.call(
                "events.ingest",
                [
                    "product": "enrich",
                    "events": [
                        [
                            "eventId": "e1", "type": "tool_invocation", "occurredAt": "2026-12-01T09:00:00Z",
                            "tool": "score", "sessionId": "s1",
                        ]
                    ],
                ])
            #expect(ingested["results"]?.arrayValue?.first?["status"] == "accepted", "\(ingested)")
            let refusedEvent = try await world.agent.call(
                "events.ingest",
                [
                    "product": "search-mcp",
                    "events": [
                        [
                            "eventId": "e2", "type": "tool_invocation", "occurredAt": "2026-12-01T09:00:00Z",
                            "tool": "score", "sessionId": "s1",
                        ]
                    ],
                ])
            #expect(refusedEvent["results"]?.arrayValue?.first?["status"] == "rejected", "\(refusedEvent)")

            // Usage and margin per product; revenue per product.
            let usage = try await world.op.call("usage.summary", ["groupBy": ["product"]])
            let byProduct = Dictionary(
                uniqueKeysWithValues: (usage["rows"]?.arrayValue ?? []).map { ($0["product"]!.string!, $0["cost"]!) })
            #expect(
                byProduct == [world.search["productId"]!.string!: "0.5", world.enrich["productId"]!.string!: "0.04"],
                "\(usage)")
            let filtered = try await world.op.call("usage.summary", ["productId": world.enrich["productId"]!])
            #expect(filtered["total"]?["calls"] == 2)
            let margin = try await world.op.call("reports.margin", ["groupBy": ["product"]])
            #expect(margin["rows"]?.arrayValue?.count == 2, "\(margin)")
            let revenue = try await world.op.call("reports.revenue", ["customerId": world.customerId])
            let drafts = revenue["customers"]?.arrayValue ?? []
            #expect(Set(drafts.compactMap { $0["product"]?.string }) == ["search-mcp", "enrich"], "\(revenue)")

            if !storage.hasPrefix("memory") {
                // After a restart: the products, the subscriptions' products, and the hold's product.
                try await server.stop()
                server = try await servers.start(storageURL: storage, clock: clock)
            }
            let op = try await server.connect(token: world.operatorToken)
            let agent = try await server.connect(token: world.agentToken)
            #expect(try await op.call("products.get", ["productId": "search-mcp"]) == world.search)
            let committed = try await agent.call(
                "meter.commit", ["reservationId": hold["reservationId"]!, "quantity": 2])
            #expect(committed["cost"] == "0.2", "priced by the search plan, the hold's product's: \(committed)")

            clock.set(Timestamp.parse("2026-12-02T00:00:01Z")!)
            let invoice = try await op.call("periods.close", ["subscriptionId": world.searchSubscription])
            #expect(invoice["product"] == "search-mcp" && invoice["productId"] == world.search["productId"])
            #expect(invoice["total"] == "0.7", "search 0.25 × 2 and fetch 0.1 × 2: \(invoice)")
            let other = try await op.call("periods.close", ["subscriptionId": world.enrichSubscription])
            #expect(other["product"] == "enrich" && other["total"] == "0.04", "\(other)")
        }
    }

    /// A customer with one subscription needs not name it; a product it does not subscribe to is refused; bad
    /// products are refused; another tenant sees none of them.
    @Test func defaultsRefusalsAndIsolation() async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-01T09:00:00Z")!)
        try await TestServer.with(clock: clock) { server in
            let world = try await Self.world(on: server)
            // A second customer subscribed to the enrich product only: its calls need no product.
            let customer = try await world.op.call("customers.create", ["name": "Solo"])["customerId"]!
            let team = try await world.op.call("teams.create", ["customerId": customer, "name": "t"])["teamId"]!
            let agentId = try await world.op.call("agents.create", ["teamId": team, "name": "a"])["agentId"]!
            let plan = try await world.op.call("plans.put", Self.enrichPlan)["planId"]!  // its version 2
            _ = try await world.op.call(
                "subscriptions.create", ["customerId": customer, "planId": plan, "productId": "enrich"])
            let token = try await world.op.call(
                "credentials.issue", ["agentId": agentId, "scopes": ["meter:write"], "ttlSeconds": 3600])["token"]!
            let solo = try await server.connect(token: token.string!)
            #expect(try await Self.verify(solo, "anything", "s1", product: nil, session: "solo")["cost"] == "0.02")
            #expect(
                await reason { try await Self.verify(solo, "search", "s2", product: "search-mcp", session: "solo") }
                    == "CONFLICT",
                "not subscribed to it")

            func create(_ params: JSONValue) async -> String? {
                await reason { try await world.op.call("products.create", params) }
            }
            #expect(await create(["name": "x", "type": "saas"]) == "VALIDATION_FAILED")
            #expect(await create(["name": "search-mcp", "type": "mcp_server"]) == "CONFLICT", "names are unique")
            #expect(await create(["name": "y", "type": "ai_agent", "closed": true]) == "VALIDATION_FAILED")
            #expect(
                await create(["name": "z", "type": "ai_agent", "tools": [["name": "a"], ["name": "a"]]])
                    == "VALIDATION_FAILED")
            #expect(
                await create(["name": "w", "type": "ai_agent", "tools": [["name": "a", "estimate": ["quantity": 0]]]])
                    == "VALIDATION_FAILED")
            #expect(await create(["name": "v", "type": "ai_agent", "tools": "search"]) == "code -32602")

            // Opening the closed catalog lets the plan price other tools.
            let opened = try await world.op.call("products.update", ["productId": "search-mcp", "closed": false])
            #expect(opened["closed"] == false && opened["tools"] == world.search["tools"])
            #expect(try await Self.verify(world.agent, "translate", "o1", product: "search-mcp")["cost"] == "0.5")

            let other = try await Self.world(on: server)
            #expect(
                await reason { try await other.op.call("products.get", ["productId": world.search["productId"]!]) }
                    == "NOT_FOUND")
            #expect(
                await reason {
                    try await other.op.call(
                        "subscriptions.create",
                        [
                            "customerId": other.customerId, "planId": plan,
                            "productId": world.search["productId"]!,
                        ])
                } == "NOT_FOUND", "another tenant's product")
            let listed = try await other.op.call("products.list", [:])
            #expect(
                listed["products"]?.arrayValue?.map { $0["productId"] }.contains(world.search["productId"]) == false)
            #expect(
                await reason { try await world.agent.call("products.list", [:]) } == "FORBIDDEN")
        }
    }
}
