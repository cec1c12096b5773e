import Foundation
import Testing
import TollgateClient
import TollgateJSON
import TollgateTesting

/// Where the built `tollgated` and `tollgate` are: beside the test bundle.
enum Products {
    static let directory: URL = {
        let executable = URL(
            fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
                ?? CommandLine.arguments[0])
        return executable.deletingLastPathComponent()
    }()

    static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// The repository root (this file is at Tests/TollgateCLITests/Support.swift).
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
}

/// A free loopback port, found by binding port 0 and releasing it.
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    try withUnsafeMutablePointer(to: &address) { pointer in
        try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
            guard bind(fd, raw, length) == 0, getsockname(fd, raw, &length) == 0 else { throw POSIXError(.EADDRINUSE) }
        }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A loopback port nothing listens on, for as long as this value lives: its socket is bound but never listens,
/// so connections to it are refused and no other test's server can take the port meanwhile (as it can take one
/// `freePort` found free).
final class ClosedPort: Sendable {
    let port: Int
    private let fd: Int32

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                bind(fd, raw, length) == 0 && getsockname(fd, raw, &length) == 0
            }
        }
        guard bound else {
            close(fd)
            throw POSIXError(.EADDRINUSE)
        }
        self.fd = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    /// `127.0.0.1:PORT`.
    var address: String { "127.0.0.1:\(port)" }

    deinit { close(fd) }
}

func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

struct ProcessResult: Sendable {
    var status: Int32
    var output: String
    var error: String
}

/// Runs a program to completion (bounded by `timeoutSeconds`: then it is killed and the test records an issue)
/// and collects its output.
func run(
    _ executable: String, _ arguments: [String], environment: [String: String] = [:], directory: URL? = nil,
    timeoutSeconds: Double = 60
) async throws -> ProcessResult {
    let child = try await ChildProcess.start(executable, arguments, environment: environment, directory: directory)
    let status = await child.finish(within: timeoutSeconds, name: executable)
    defer { try? FileManager.default.removeItem(at: child.outputFile.deletingLastPathComponent()) }
    return ProcessResult(status: status, output: child.output, error: child.errors)
}

/// A program that listens on a loopback port — `tollgated`, an MCP server, the HTTP proxy — started and waited
/// for until it listens.
final class ServerProcess: Sendable {
    let child: ChildProcess
    let port: Int
    /// Whether standard output and error share one log (`launch`) or have a file each (`start`).
    private let sharedLog: Bool

    /// Starts `tollgated` on a free port and waits until it listens: until it says so itself, since another
    /// program may take the port between `freePort` finding it and `tollgated` binding it (then this one exits, and
    /// another port is tried).
    static func start(directory: URL, environment: [String: String]) async throws -> ServerProcess {
        var attempt = 0
        while true {
            attempt += 1
            let port = try freePort()
            let child = try await ChildProcess.start(
                Products.path("tollgated"), [],
                environment: environment.merging(["TOLLGATE_LISTEN": "127.0.0.1:\(port)"]) { $1 },
                directory: directory)
            do {
                return try await ServerProcess(child: child, port: port, sharedLog: false, seconds: 60) {
                    $0.errors.contains("listening")
                }
            } catch let failure as StartFailure where failure.log.contains("Address already in use") && attempt < 5 {
                continue
            }
        }
    }

    /// Starts any program that listens on `port` and waits until it does. Both its streams go to `log`.
    static func launch(
        _ executable: String, _ arguments: [String], port: Int, environment: [String: String] = [:], log: URL
    ) async throws -> ServerProcess {
        let child = try await ChildProcess.start(
            executable, arguments, environment: environment, outputFile: log, errorsToOutput: true)
        // A Python MCP server imports for seconds, more while the whole suite runs on two cores.
        return try await ServerProcess(child: child, port: port, sharedLog: true, seconds: 90) { _ in true }
    }

    /// Waits until the program listens (`port` accepts and `ready` says so): long enough for a start under the whole
    /// suite's load (dozens of servers and children on two cores; a PostgreSQL-backed start has been seen to take
    /// over 10 s there). A program that exits first, or does not listen in time, is killed and its log thrown.
    private init(
        child: ChildProcess, port: Int, sharedLog: Bool, seconds: Double, ready: (ChildProcess) -> Bool
    ) async throws {
        self.child = child
        self.port = port
        self.sharedLog = sharedLog
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if ready(child) && Self.accepts(port) { return }
            if let status = await child.wait(seconds: 0.02) {
                throw StartFailure(status: status, log: child.output + child.errors)
            }
        }
        child.signal(SIGKILL)
        _ = await child.wait(seconds: 30)
        throw StartFailure(status: nil, log: child.output + child.errors)
    }

    struct StartFailure: Error, CustomStringConvertible {
        var status: Int32?
        var log: String
        var description: String {
            (status.map { "exited (\($0)) before listening" } ?? "did not listen in time") + ":\n" + log
        }
    }

    private static func accepts(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        } == 0
    }

    var address: String { "127.0.0.1:\(port)" }

    func signal(_ signal: Int32) { child.signal(signal) }

    /// Waits for the process to exit and returns its status (-1 if it still runs after two minutes).
    func wait() async -> Int32 { await child.wait(seconds: 120) ?? -1 }

    /// What the process wrote to standard output (with `launch`, both its streams).
    func standardOutput() -> String { child.output }
    /// What the process wrote to standard error (with `launch`, both its streams).
    func standardError() -> String { sharedLog ? child.output : child.errors }

    /// Stops with `signal` and returns the exit status, with the server's log when it is not 0.
    func stop(with signal: Int32 = SIGTERM) async -> (status: Int32, log: String) {
        self.signal(signal)
        let status = await wait()
        return (status, status == 0 ? "" : standardError())
    }
}

/// The operator's connection to `world`'s tenant, with a cap of 1 a day set on its agent: every call's price and
/// every hold counts against it, so `spent(_:)` shows what is charged or held at any moment.
func capAgentAtOnePerDay(_ world: Fixture, on server: TestServer) async throws -> TollgateConnection {
    let op = try await server.connect(token: world.operatorToken)
    _ = try await op.call(
        "caps.set", ["scope": "agent", "scopeId": .string(world.agentId), "limit": "1", "period": "day"])
    return op
}

/// What the agent's one cap counts now: charged and held.
func spent(_ op: TollgateConnection) async throws -> JSONValue? {
    try await op.call("caps.list")["caps"]?.arrayValue?.first?["spent"]
}

/// The real `tollgate` binary run against `address` as the operator with `token`: each run checks its exit status
/// (and says why when it is not the one expected).
struct TollgateCommand: Sendable {
    let address: String
    let token: String

    func callAsFunction(_ arguments: [String], expecting status: Int32 = 0) async throws -> ProcessResult {
        let result = try await run(Products.path("tollgate"), arguments + ["--token", token, "--address", address])
        #expect(result.status == status, "\(arguments): \(result.error)")
        return result
    }

    /// What a successful run printed, trimmed (a `--get` field, say).
    func value(_ arguments: [String]) async throws -> String {
        try await self(arguments).output.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// A customer made with `tollgate customers create ARGUMENTS`, subscribed to `Fixture.searchPlan` by day with
/// `tollgate subscriptions create`, and one agent of it, connected: where the billing commands' tests start.
func dailyCustomer(on server: TestServer, _ tollgate: TollgateCommand, _ arguments: [String]) async throws
    -> (customer: String, subscription: String, agent: TollgateConnection)
{
    let customer = try await tollgate.value(["customers", "create"] + arguments + ["--get", "customerId"])
    let op = try await server.connect(token: tollgate.token)
    let planId = try await op.call("plans.put", Fixture.searchPlan)["planId"]!.stringValue!
    let subscription = try await tollgate.value([
        "subscriptions", "create", "--customer", customer, "--plan", planId, "--period", "day", "--get",
        "subscriptionId",
    ])
    let team = try await op.call("teams.create", ["customerId": .string(customer), "name": "t"])["teamId"]!
    let agentId = try await op.call("agents.create", ["teamId": team, "name": "a"])["agentId"]!
    let token = try await op.call(
        "credentials.issue", ["agentId": agentId, "scopes": ["meter:write"], "ttlSeconds": 864_000])["token"]!
    return (customer, subscription, try await server.connect(token: token.stringValue!))
}
