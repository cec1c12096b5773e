import ArgumentParser
import Foundation
import TollgateJSON

/// `tollgate products create | update | list | show`.
struct Products: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Products: what the tenant sells, each with its tool catalog.",
        discussion: """
            A customer subscribes per product (tollgate subscriptions create --product); calls name their product
            (the proxy's --product), or mean the customer's only subscription. A closed catalog refuses tools it
            does not list; an open one lets the plan price them (its "*" rate).
            """,
        subcommands: [Create.self, Update.self, List.self, Show.self])

    enum Kind: String, ExpressibleByArgument, CaseIterable {
        case mcpServer = "mcp_server", aiAgent = "ai_agent", agenticAPI = "agentic_api", standardAPI = "standard_api"
    }

    /// `--tool NAME[=DESCRIPTION]`, repeatable.
    static func tools(_ specs: [String]) -> JSONValue {
        .array(
            specs.map { spec in
                let parts = spec.split(separator: "=", maxSplits: 1).map(String.init)
                var tool: [String: JSONValue] = ["name": .string(parts[0])]
                if parts.count == 2 { tool["description"] = .string(parts[1]) }
                return .object(tool)
            })
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a product.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "Its name (unique in the tenant).") var name: String
        @Option(name: .long, help: "mcp_server, ai_agent, agentic_api or standard_api.") var type: Kind
        @Option(name: .long, help: "A tool of its catalog, NAME or NAME=DESCRIPTION (repeatable).") var tool: [String] =
            []
        @Option(
            name: .long, help: "The catalog as a JSON array of {name, description?, estimate?} (instead of --tool).")
        var catalog: String?
        @Flag(name: .long, help: "Refuse calls of tools the catalog does not list.") var closed = false
        func run() async throws {
            let params: [String: JSONValue] = [
                "name": .string(name), "type": .string(type.rawValue), "closed": .bool(closed),
                "tools": try Products.catalog(catalog, tools: tool),
            ]
            try await options.call("products.create", params)
        }
    }

    static func catalog(_ json: String?, tools: [String]) throws -> JSONValue {
        guard let json else { return Self.tools(tools) }
        guard let parsed = try? JSONCodec.parse(Array(json.utf8)), parsed.arrayValue != nil else {
            throw ValidationError("--catalog takes a JSON array")
        }
        return parsed
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace a product's catalog, or open or close it; calls from now on are checked against it.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The product's id or name.") var product: String
        @Option(name: .long, help: "A tool of its new catalog (repeatable).") var tool: [String] = []
        @Option(name: .long, help: "Its new catalog as a JSON array.") var catalog: String?
        @Option(name: .long, help: "true: refuse tools it does not list; false: let the plan price them.")
        var closed: Bool?
        func run() async throws {
            var params: [String: JSONValue] = ["productId": .string(product)]
            if !tool.isEmpty || catalog != nil { params["tools"] = try Products.catalog(catalog, tools: tool) }
            if let closed { params["closed"] = .bool(closed) }
            try await options.call("products.update", params)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The tenant's products.")
        @OptionGroup var options: GlobalOptions
        func run() async throws { try await options.call("products.list", [:]) }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One product with its catalog.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The product's id or name.") var product: String
        func run() async throws { try await options.call("products.get", ["productId": .string(product)]) }
    }
}
