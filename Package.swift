// swift-tools-version: 6.2
import Foundation
import PackageDescription

// The target graph points one way: down. See DESIGN.md's module table, mirrored in README.md.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

// Every folder under Plugins/ named `…Strategy` is a pricing-strategy plug-in target depending only on
// TollgatePricing, so adding a strategy takes a folder there and one line in Plugins/TollgateStrategies.
let strategyPlugins: [String] = {
    let root = Context.packageDirectory + "/Plugins"
    let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
    return names.filter { $0.hasSuffix("Strategy") }.sorted()
}()

let package = Package(
    name: "tollgate",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tollgated", targets: ["tollgated"]),
        .executable(name: "tollgate", targets: ["tollgate"]),
        .library(name: "TollgateClient", targets: ["TollgateClient"]),
        .library(name: "TollgateTesting", targets: ["TollgateTesting"]),
        .library(name: "TollgateMCPSwift", targets: ["TollgateMCPSwift"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.4.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        // The MCP proxy's Streamable HTTP side: its server, and its client to the upstream MCP server.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        // Already resolved for Hummingbird; named for AsyncChannel (the HTTP proxy's SSE relay, with backpressure).
        .package(url: "https://github.com/apple/swift-async-algorithms", from: "1.1.4"),
        // The official Swift MCP SDK, for the wrapper that meters a server built on it (TollgateMCPSwift).
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk", from: "0.12.1"),
        // Already resolved for postgres-nio; named so the start-up probe can open a TLS connection itself.
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        // Child processes, for the tests that run the real binaries (Foundation's Process is unsafe there: see
        // Tests/TollgateCLITests/ChildProcess.swift).
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
    ],
    targets: [
        // Pure domain: ids, Money, usage, cap ledger, hierarchy. Foundation only.
        .target(name: "TollgateCore", swiftSettings: swiftSettings),
        // JSON as a value, and its strict reader and canonical writer (exact integers, a depth limit, no
        // duplicate keys): the wire's, plan documents' and stored answers' format. Depends on nothing.
        .target(name: "TollgateJSON", swiftSettings: swiftSettings),
        // The PricingStrategy protocol, the registry, plan documents, rating.
        .target(name: "TollgatePricing", dependencies: ["TollgateCore", "TollgateJSON"], swiftSettings: swiftSettings),
        // The list of built-in strategies: the one place a new plug-in is registered.
        .target(
            name: "TollgateStrategies", dependencies: ["TollgatePricing"] + strategyPlugins.map { .target(name: $0) },
            path: "Plugins/TollgateStrategies", swiftSettings: swiftSettings),
        // Ingestion's gates (schema, idempotency, timestamp, lateness): pure decisions about a batch of events.
        .target(name: "TollgateIngest", dependencies: ["TollgateCore", "TollgateJSON"], swiftSettings: swiftSettings),
        // The storage protocol, records and the in-memory store.
        .target(name: "TollgateStorage", dependencies: ["TollgateCore", "TollgateJSON"], swiftSettings: swiftSettings),
        .target(
            name: "TollgateSQLite",
            dependencies: [
                "TollgateStorage", "TollgateJSON",
                .product(name: "GRDB", package: "GRDB.swift"), .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ], swiftSettings: swiftSettings),
        .target(
            name: "TollgatePostgres",
            dependencies: [
                "TollgateStorage", "TollgateJSON",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ], swiftSettings: swiftSettings),
        // Framing, the JSON-RPC envelope and error codes.
        .target(
            name: "TollgateWire",
            dependencies: [
                "TollgateCore", "TollgateJSON",
                .product(name: "NIOCore", package: "swift-nio"),
            ], swiftSettings: swiftSettings),
        // Billing: periods closed into invoices, stage by stage, without storage or a clock.
        .target(
            name: "TollgateBilling",
            dependencies: ["TollgateCore", "TollgateJSON", "TollgatePricing", "TollgateStorage"],
            swiftSettings: swiftSettings),
        // The hand-off of finalized invoices to Stripe: the requests (a state machine), the outbox worker, HTTP.
        .target(
            name: "TollgateStripe",
            dependencies: [
                "TollgateCore", "TollgateJSON", "TollgatePricing", "TollgateStorage", "TollgateBilling",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ], swiftSettings: swiftSettings),
        // Supervisor, tenant actors, the ledger writer.
        .target(
            name: "TollgateRuntime",
            dependencies: [
                "TollgateCore", "TollgateJSON", "TollgatePricing", "TollgateStorage", "TollgateIngest",
                "TollgateBilling",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ], swiftSettings: swiftSettings),
        // The NIO server, connection handling, method routing, authentication, configuration.
        .target(
            name: "TollgateServer",
            dependencies: [
                "TollgateWire", "TollgateRuntime", "TollgateSQLite", "TollgatePostgres", "TollgateStrategies",
                "TollgateIngest", "TollgateStripe",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Configuration", package: "swift-configuration"),
            ], swiftSettings: swiftSettings),
        // The Swift client: one persistent connection, pipelining.
        .target(
            name: "TollgateClient",
            dependencies: [
                "TollgateWire", "TollgateJSON",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ], swiftSettings: swiftSettings),
        // Metering MCP servers: the tool-call meter (a state machine) and the proxy that drives it.
        .target(
            name: "TollgateMCP",
            dependencies: [
                "TollgateClient", "TollgateCore", "TollgateJSON", "TollgateWire",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "tollgate-mcp-proxy",
            dependencies: [
                "TollgateMCP", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        // Metering inside an MCP server built on the official Swift SDK: one call wraps its CallTool handler.
        .target(
            name: "TollgateMCPSwift",
            dependencies: [
                "TollgateMCP", "TollgateClient", "TollgateCore", "TollgateJSON",
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        // An example MCP server on the Swift SDK, metered with TollgateMCPSwift (driven by the Python client in
        // the tests).
        .executableTarget(
            name: "MeteredSwiftServer",
            dependencies: [
                "TollgateMCPSwift", .product(name: "MCP", package: "swift-sdk"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Integration/MeteredSwiftServer", swiftSettings: swiftSettings),
        // In-process server helpers for tests, shipped as a library.
        .target(
            name: "TollgateTesting",
            dependencies: [
                "TollgateServer", "TollgateClient", "TollgateRuntime", "TollgatePricing", "TollgateStrategies",
                "TollgateStorage", "TollgateCore", "TollgateJSON", "TollgateStripe",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ], swiftSettings: swiftSettings),
        .executableTarget(
            name: "tollgated",
            dependencies: [
                "TollgateServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ], swiftSettings: swiftSettings),
        .executableTarget(
            name: "tollgate",
            dependencies: [
                "TollgateClient", "TollgateJSON", "TollgatePricing", "TollgateStrategies", "TollgateIngest",
                "TollgateBilling", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ], swiftSettings: swiftSettings),
        // Benchmark: the cost of rating one event under each strategy and modifier.
        .executableTarget(
            name: "TollgateRatingBench", dependencies: ["TollgatePricing", "TollgateStrategies", "TollgateJSON"],
            path: "Integration/RatingBench", swiftSettings: swiftSettings),
        // Benchmark: 64 pipelining agent connections against a live server on SQLite.
        .executableTarget(
            name: "TollgateBench",
            dependencies: [
                "TollgateTesting", "TollgateWire",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ], path: "Integration/Bench",
            swiftSettings: swiftSettings),
        // Benchmark: one tenant's flood or size against another tenant's latency, and against itself.
        .executableTarget(
            name: "TollgateTenantLoadBench", dependencies: ["TollgateTesting", "TollgateClient"],
            path: "Integration/TenantLoadBench", swiftSettings: swiftSettings),
        // Benchmark: batched events.ingest, durable, in events/s.
        .executableTarget(
            name: "TollgateIngestBench",
            dependencies: ["TollgateTesting", "TollgateClient", "TollgateJSON", "TollgateIngest", "TollgateStorage"],
            path: "Integration/IngestBench", swiftSettings: swiftSettings),
        // Benchmark: the latency tollgate-mcp-proxy adds to a tools/call, and calls/s through one proxy.
        .executableTarget(
            name: "TollgateMCPBench",
            dependencies: ["TollgateTesting", "TollgateMCP", "TollgateClient", "TollgateJSON"],
            path: "Integration/MCPBench", swiftSettings: swiftSettings),

        .testTarget(name: "TollgateCoreTests", dependencies: ["TollgateCore"]),
        .testTarget(
            name: "TollgateBillingTests",
            dependencies: ["TollgateBilling", "TollgateCore", "TollgateJSON", "TollgateStorage", "TollgatePricing"]),
        .testTarget(name: "TollgateJSONTests", dependencies: ["TollgateJSON"]),
        .testTarget(
            name: "TollgateStripeTests",
            dependencies: [
                "TollgateStripe", "TollgateBilling", "TollgateCore", "TollgateJSON", "TollgateStorage",
                "TollgateTesting",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(name: "TollgateIngestTests", dependencies: ["TollgateIngest", "TollgateCore", "TollgateJSON"]),
        .testTarget(
            name: "TollgateMCPTests",
            dependencies: [
                "TollgateMCP", "TollgateJSON", "TollgateCore", "TollgateClient", "TollgateTesting",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "TollgatePricingTests", dependencies: ["TollgatePricing", "TollgateStrategies", "TollgateJSON"]),
        .testTarget(
            name: "TollgateStorageTests",
            dependencies: [
                "TollgateStorage", "TollgateSQLite", "TollgatePostgres", "TollgateJSON",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]),
        .testTarget(
            name: "TollgateWireTests",
            dependencies: [
                "TollgateWire", "TollgateJSON",
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]),
        // The runtime's values and the tenant actor in process: no socket, no JSON on the wire.
        .testTarget(
            name: "TollgateRuntimeTests",
            dependencies: [
                "TollgateRuntime", "TollgateStrategies", "TollgateStorage", "TollgatePricing", "TollgateCore",
                "TollgateJSON", "TollgateTesting",
            ]),
        .testTarget(
            name: "TollgateServerTests",
            dependencies: [
                "TollgateTesting", "TollgateServer", "TollgateRuntime", "TollgateWire", "TollgateClient",
                "TollgateSQLite", "TollgatePostgres", "TollgateJSON",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]),
        .testTarget(
            name: "TollgateCLITests",
            dependencies: [
                "TollgateTesting", "TollgateServer", "TollgateRuntime", "TollgateJSON",
                .product(name: "Subprocess", package: "swift-subprocess"),
            ]),
    ]
        + strategyPlugins.map { name in
            // Pricing strategy plug-ins: one target each, depending only on TollgatePricing.
            .target(
                name: name, dependencies: ["TollgatePricing"], path: "Plugins/\(name)", swiftSettings: swiftSettings)
        }
)
