import ArgumentParser
import Foundation
import TollgateClient
import TollgateJSON

/// `tollgate agents …`, `tollgate credentials …` and `tollgate operators …`: who may call the server, and with
/// what. A command that makes a secret prints it once and warns, on standard error, to store it.
struct Agents: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Agents.", subcommands: [Create.self, List.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an agent; prints its client secret once.")
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "The team id.") var team: String
        @Option(name: .long, help: "A free-form agent type.") var type: String?
        @Argument(help: "The agent's name.") var name: String
        func run() async throws {
            var params: [String: JSONValue] = ["teamId": .string(team), "name": .string(name)]
            params.set("agentType", type)
            try await options.call("agents.create", params, secret: "clientSecret")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the tenant's agents (never their secrets).")
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "Only this team's agents.") var team: String?
        func run() async throws {
            var params: [String: JSONValue] = [:]
            params.set("teamId", team)
            try await options.call("agents.list", params)
        }
    }
}

struct Credentials: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Agent credentials.",
        subcommands: [
            Issue.self, IssueCredit.self, Delegate.self, List.self, Revoke.self, Rotate.self, Revocations.self,
        ])

    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Issue an AGT- token for an agent; printed once.")
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "The agent id.") var agent: String
        @Option(name: .long, help: "A scope to grant (repeatable; default meter:write).") var scope: [String] = []
        @Option(name: .long, help: "Lifetime in seconds.") var ttl: Int = 86_400
        @Option(name: .long, help: "Lifetime spend limit of this credential, a decimal amount.") var spendLimit: String?
        func run() async throws {
            var params: [String: JSONValue] = [
                "agentId": .string(agent), "ttlSeconds": .integer(Int64(ttl)),
                "scopes": .array((scope.isEmpty ? ["meter:write"] : scope).map(JSONValue.string)),
            ]
            params.set("spendLimit", spendLimit)
            try await options.call("credentials.issue", params, secret: "token")
        }
    }

    struct IssueCredit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "issue-credit",
            abstract: "Issue a credit token for an agent: a signed JWT (printed once) an MCP server can check offline.",
            discussion: """
                The token carries the tenant, agent, scopes, spend limit and expiry, signed with the server's
                Ed25519 key; auth.keys publishes the public keys and auth.revocations the revoked tokens. The
                server enforces the spend limit on its own ledger.
                """)
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "The agent id.") var agent: String
        @Option(name: .long, help: "The most it may spend, a decimal amount.") var spendLimit: String
        @Option(name: .long, help: "A scope to grant (repeatable; default meter:write).") var scope: [String] = []
        @Option(name: .long, help: "Lifetime in seconds.") var ttl: Int = 3600
        func run() async throws {
            let params: [String: JSONValue] = [
                "agentId": .string(agent), "ttlSeconds": .integer(Int64(ttl)), "spendLimit": .string(spendLimit),
                "scopes": .array((scope.isEmpty ? ["meter:write"] : scope).map(JSONValue.string)),
            ]
            try await options.call("credentials.issueCredit", params, secret: "token")
        }
    }

    struct Delegate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "As an agent: mint a child credential for a sub-agent (token printed once).",
            discussion: """
                Needs an agent token with scope credentials:delegate (--token or TOLLGATE_TOKEN). The child has
                at most the parent's scopes, remaining life and what its spend limit has left; its spend counts
                against the parent's limit too, and revoking the parent revokes it.
                """)
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "The most the sub-agent may spend, a decimal amount.") var spendLimit: String
        @Option(name: .long, help: "A scope to give (repeatable; default meter:write).") var scope: [String] = []
        @Option(name: .long, help: "Lifetime in seconds.") var ttl: Int = 600
        @Option(name: .long, help: "What the sub-agent is (e.g. researcher).") var label: String?
        func run() async throws {
            var params: [String: JSONValue] = [
                "spendLimit": .string(spendLimit), "ttlSeconds": .integer(Int64(ttl)),
                "scopes": .array((scope.isEmpty ? ["meter:write"] : scope).map(JSONValue.string)),
            ]
            params.set("label", label)
            try await options.call("credentials.delegate", params, tenantScoped: false, secret: "token")
        }
    }

    struct Revocations: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List revoked credentials that have not expired (what an offline checker must refuse).")
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "Only those revoked at or after this time (RFC 3339).") var since: String?
        func run() async throws {
            var params: [String: JSONValue] = [:]
            params.set("since", since)
            try await options.call("auth.revocations", params)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List agent credentials: prefix, scopes, expiry, last use (never a token).")
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "Only this agent's credentials.") var agent: String?
        func run() async throws {
            var params: [String: JSONValue] = [:]
            params.set("agentId", agent)
            try await options.call("credentials.list", params)
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a credential; open connections fail at their next request.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The credential id.") var credentialId: String
        func run() async throws {
            try await options.call("credentials.revoke", ["credentialId": .string(credentialId)])
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Give an agent a new client secret, printed once; the old one ends now or after --overlap.")
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "The agent id.") var agent: String
        @Option(name: .long, help: "Seconds the old secret keeps working (default 0: it stops now).") var overlap: Int?
        func run() async throws {
            var params: [String: JSONValue] = ["agentId": .string(agent)]
            params.set("overlapSeconds", overlap)
            try await options.call("credentials.rotate", params, secret: "clientSecret")
        }
    }
}

struct Operators: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The tenant's operator credentials (needs scope operator).",
        subcommands: [Issue.self, List.self, Revoke.self, Rotate.self])

    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue an operator credential (TGO- token, printed once) with the scopes given.",
            discussion: """
                Scopes: operator (everything), plans:write, agents:write, caps:write, billing:read, billing:write,
                alerts:read, events:write. docs/PROTOCOL.md lists the scope each method needs.
                """)
        @OptionGroup var options: GlobalOptions
        @Argument(help: "A name to tell it by (e.g. the system that will hold it).") var name: String
        @Option(name: .long, help: "A scope to grant (repeatable; at least one).") var scope: [String] = []
        @Option(name: .long, help: "Lifetime in seconds (default: until revoked).") var ttl: Int?
        func run() async throws {
            guard !scope.isEmpty else { throw CLIError("name at least one --scope (operator grants everything)") }
            var params: [String: JSONValue] = [
                "name": .string(name), "scopes": .array(scope.map(JSONValue.string)),
            ]
            params.set("ttlSeconds", ttl)
            try await options.call("operators.issue", params, secret: "token")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List operator credentials: name, prefix, scopes, expiry, last use (never a token).")
        @OptionGroup var options: GlobalOptions
        func run() async throws { try await options.call("operators.list", [:]) }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke an operator credential at once; its open connections fail at their next request.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The operator credential id (opc_…).") var credentialId: String
        func run() async throws {
            try await options.call("operators.revoke", ["credentialId": .string(credentialId)])
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace an operator credential by a new one (token printed once); the old one ends now or "
                + "after --overlap.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The operator credential id (opc_…).") var credentialId: String
        @Option(name: .long, help: "Seconds the old token keeps working (default 0: it stops now).") var overlap: Int?
        func run() async throws {
            var params: [String: JSONValue] = ["credentialId": .string(credentialId)]
            params.set("overlapSeconds", overlap)
            try await options.call("operators.rotate", params, secret: "token")
        }
    }
}

struct SigningKeys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "The keys that sign credit tokens.", subcommands: [Show.self, Rotate.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the public keys that verify credit tokens now, as a JWKS (needs no token).")
        @Option(name: .long, help: "Server address host:port (env TOLLGATE_ADDRESS; default 127.0.0.1:7420).")
        var address: String = ProcessInfo.processInfo.environment["TOLLGATE_ADDRESS"] ?? "127.0.0.1:7420"
        func run() async throws {
            let connection: TollgateConnection
            do { connection = try await TollgateConnection.connect(address: address) } catch {
                throw CLIError("cannot connect to \(address): \(error)")
            }
            let keys: JSONValue
            do { keys = try await connection.call("auth.keys", [:]) } catch {
                await connection.close()
                throw error
            }
            await connection.close()
            print(JSONCodec.string(keys))
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Root: start a new signing key; the old one verifies for --overlap seconds more.")
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "Seconds the old key keeps verifying (default 86400).") var overlap: Int?
        func run() async throws {
            var params: [String: JSONValue] = [:]
            params.set("overlapSeconds", overlap)
            try await options.call("keys.rotate", params, tenantScoped: false)
        }
    }
}
