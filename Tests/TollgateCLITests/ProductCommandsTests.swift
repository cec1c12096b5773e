import Foundation
import Testing
import TollgateCore
import TollgateJSON
import TollgateTesting

/// `tollgate products create | update | list | show` and `tollgate subscriptions create --product`, with the real
/// binary.
@Suite struct ProductCommandsTests {
    @Test func productsFromTheCommandLine() async throws {
        try await TestServer.with { server in
            let root = try await server.connect(token: TestServer.rootToken)
            let op = try await root.call("tenants.create", ["name": "Acme"])["operatorToken"]!.stringValue!
            let tollgate = TollgateCommand(address: server.address, token: op)
            func value(_ arguments: [String]) async throws -> String { try await tollgate.value(arguments) }
            let productId = try await value([
                "products", "create", "search-mcp", "--type", "mcp_server", "--tool", "search=Web search",
                "--tool", "fetch", "--closed", "--get", "productId",
            ])
            #expect(productId.hasPrefix("prd_"))
            _ = try await tollgate(
                [
                    "products", "create", "other", "--type", "ai_agent", "--catalog",
                    #"[{"name":"plan","estimate":{"inputTokens":500}}]"#,
                ])
            _ = try await tollgate(["products", "create", "x", "--type", "saas"], expecting: 64)
            _ = try await tollgate(["products", "create", "search-mcp", "--type", "mcp_server"], expecting: 1)
            let listed = try await value(["products", "list"])
            #expect(listed.contains("search-mcp") && listed.contains("other"), "\(listed)")
            let shown = try JSONCodec.parse(Array(try await value(["products", "show", "search-mcp", "--json"]).utf8))
            #expect(shown["tools"]?.arrayValue?.first?["description"] == "Web search", "\(shown)")
            let opened = try await value(["products", "update", "search-mcp", "--closed", "false", "--get", "closed"])
            #expect(opened == "false")

            let customer = try await value(["customers", "create", "Kiwi", "--get", "customerId"])
            let operatorConnection = try await server.connect(token: op)
            let planId = try await operatorConnection.call("plans.put", Fixture.searchPlan)["planId"]!.stringValue!
            let subscribed = try await value([
                "subscriptions", "create", "--customer", customer, "--plan", planId, "--product", "search-mcp",
                "--get", "productId",
            ])
            #expect(subscribed == productId)
            _ = try await tollgate(
                ["subscriptions", "create", "--customer", customer, "--plan", planId, "--product", "nope"],
                expecting: 1)
        }
    }
}
