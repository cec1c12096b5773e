import ArgumentParser
import Foundation
import TollgateClient
import TollgateCore
import TollgateJSON

struct Sessions: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Agent sessions.", subcommands: [List.self, Show.self, Close.self, Configure.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List open sessions (--all: closed ones too, newest first).")
        @OptionGroup var options: GlobalOptions
        @Flag(name: .long, help: "Include closed sessions.") var all = false
        @Option(name: .long, help: "At most this many (1–1000, default 100).") var limit: Int?
        func run() async throws {
            var params: [String: JSONValue] = ["state": .string(all ? "all" : "open")]
            params.set("limit", limit)
            try await options.call("sessions.list", params)
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a session: state, totals so far, projected cost.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The session id.") var sessionId: String
        func run() async throws { try await options.call("session.get", ["sessionId": .string(sessionId)]) }
    }

    struct Close: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Close a session and print its final billing record.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The session id.") var sessionId: String
        @Option(name: .long, help: "COMPLETED (default) or FAILED.") var outcome: String?
        func run() async throws {
            var params: [String: JSONValue] = ["sessionId": .string(sessionId)]
            params.set("outcome", outcome)
            try await options.call("session.close", params)
        }
    }

    struct Configure: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set this tenant's session idleness and timeout.")
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "Milliseconds without a call before a session is IDLE.") var idleAfterMs: Int?
        @Option(name: .long, help: "Milliseconds without a call before a session is closed.") var timeoutMs: Int?
        func run() async throws {
            var params: [String: JSONValue] = [:]
            params.set("idleAfterMs", idleAfterMs)
            params.set("sessionTimeoutMs", timeoutMs)
            try await options.call("sessions.configure", params)
        }
    }
}

struct Alerts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Alerts: cap warnings, caps reached, closed sessions, velocity, margin guard.",
        subcommands: [Tail.self, List.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List stored alerts, newest first.")
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, parsing: .upToNextOption, help: "Only these kinds.") var kinds: [String] = []
        @Option(name: .long, help: "At most this many (1–1000, default 100).") var limit: Int?
        func run() async throws {
            var params: [String: JSONValue] = [:]
            if !kinds.isEmpty { params["kinds"] = .array(kinds.map(JSONValue.string)) }
            params.set("limit", limit)
            try await options.call("alerts.list", params)
        }
    }

    struct Tail: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Stay connected and print alerts as they happen, one line each (--json: one JSON object per line).")
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, parsing: .upToNextOption, help: "Only these kinds (default: all).") var kinds: [String] =
            []

        func run() async throws {
            guard let token = options.resolvedToken else {
                throw CLIError("no token: pass --token or set TOLLGATE_TOKEN")
            }
            let connection: TollgateConnection
            do { connection = try await TollgateConnection.connect(address: options.address) } catch {
                throw CLIError("cannot connect to \(options.address): \(error)")
            }
            _ = try await connection.call("auth.hello", ["token": .string(token)])
            var params: [String: JSONValue] = [:]
            if !kinds.isEmpty { params["kinds"] = .array(kinds.map(JSONValue.string)) }
            if let tenant = options.tenant { params["tenantId"] = .string(tenant) }
            let subscribed = try await connection.call("alerts.subscribe", .object(params))
            FileHandle.standardError.write(Data("watching \(Output.scalar(subscribed["subscribed"] ?? []))\n".utf8))
            for await message in connection.notifications {
                guard message["method"]?.stringValue == "alert", let alert = message["params"] else { continue }
                print(options.json ? JSONCodec.string(alert) : Self.line(alert))
                fflush(nil)  // stdout is block-buffered when piped: show each alert as it comes
            }
            throw CLIError("the server closed the connection")
        }

        /// `2026-11-24T05:27:08.369Z  cap_warning  agent agt_… spent 0.5 of 1 (50%)`: time, kind, then the fields.
        static func line(_ alert: JSONValue) -> String {
            guard case .object(let fields) = alert else { return Output.scalar(alert) }
            let head = [fields["at"], fields["kind"]].compactMap { $0.map(Output.scalar) }
            let rest = fields.keys.filter { !["at", "kind", "alertId"].contains($0) }.sorted()
                .map { "\($0)=\(Output.scalar(fields[$0]!))" }
            return (head + rest).joined(separator: "  ")
        }
    }
}
