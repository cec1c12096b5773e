import ArgumentParser
import Foundation
import TollgateClient
import TollgateCore
import TollgateJSON

/// Options every command takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Server address host:port (env TOLLGATE_ADDRESS; default 127.0.0.1:7420).")
    var address: String = ProcessInfo.processInfo.environment["TOLLGATE_ADDRESS"] ?? "127.0.0.1:7420"

    @Option(name: .long, help: "Bearer token (env TOLLGATE_TOKEN). Never printed.")
    var token: String?

    @Option(name: .long, help: "Tenant to act in (root operator only).")
    var tenant: String?

    @Flag(name: .long, help: "Print the result as JSON.")
    var json = false

    @Option(name: .long, help: "Print only this field of the result (e.g. --get customerId).")
    var get: String?

    var resolvedToken: String? {
        token ?? ProcessInfo.processInfo.environment["TOLLGATE_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Connects, authenticates, calls `method`, prints the result, and closes. When the result carries a secret
    /// in the field `secret`, a warning on standard error says it is shown this once.
    func call(_ method: String, _ params: [String: JSONValue], tenantScoped: Bool = true, secret: String? = nil)
        async throws
    {
        let result = try await request(method, params, tenantScoped: tenantScoped)
        try Output.print(result, json: json, field: get)
        if let secret, result[secret] != nil {
            let warning =
                "warning: store the \(secret) above now: it is shown this once, and the server keeps only its hash"
            FileHandle.standardError.write(Data((warning + "\n").utf8))
        }
    }

    func request(_ method: String, _ params: [String: JSONValue], tenantScoped: Bool = true) async throws -> JSONValue {
        guard let token = resolvedToken else {
            throw CLIError("no token: pass --token or set TOLLGATE_TOKEN")
        }
        var params = params
        if tenantScoped, let tenant { params["tenantId"] = .string(tenant) }
        let connection: TollgateConnection
        do { connection = try await TollgateConnection.connect(address: address) } catch {
            throw CLIError("cannot connect to \(address): \(error)")
        }
        do {
            let hello = try await connection.call("auth.hello", ["token": .string(token)])
            let result = method == "auth.hello" ? hello : try await connection.call(method, .object(params))
            await connection.close()
            return result
        } catch {
            await connection.close()
            throw error
        }
    }
}

struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension Dictionary where Key == String, Value == JSONValue {
    /// Adds `value` under `key` when it is present.
    mutating func set(_ key: String, _ value: String?) { if let value { self[key] = .string(value) } }
    mutating func set(_ key: String, _ value: Int?) { if let value { self[key] = .integer(Int64(value)) } }
}
