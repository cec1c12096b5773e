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

/// Runs `body` on a thread of its own and waits for it without holding a thread of the cooperative pool: the
/// helpers below block while processes run, and on two cores the pool has two threads, which in-process servers
/// of the tests running beside need.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// Runs a program to completion (bounded by `timeoutSeconds`) and collects its output, off the pool.
func run(
    _ executable: String, _ arguments: [String], environment: [String: String] = [:], directory: URL? = nil,
    timeoutSeconds: Double = 60
) async throws -> ProcessResult {
    try await offPool {
        try runBlocking(
            executable, arguments, environment: environment, directory: directory, timeoutSeconds: timeoutSeconds)
    }
}

/// `run`, blocking the calling thread. The program's output goes to files rather than pipes: a pipe's end can be
/// inherited by a process started at the same moment by a concurrent test, and reading it to its end would then
/// wait for that unrelated process. A program still running at the deadline is killed (SIGKILL: a child started
/// from a pool thread inherits that thread's blocked signals, SIGTERM among them).
func runBlocking(
    _ executable: String, _ arguments: [String], environment: [String: String] = [:], directory: URL? = nil,
    timeoutSeconds: Double = 60
) throws -> ProcessResult {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-run-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: scratch) }
    let outURL = scratch.appendingPathComponent("out")
    let errURL = scratch.appendingPathComponent("err")
    FileManager.default.createFile(atPath: outURL.path, contents: nil)
    FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let out = try FileHandle(forWritingTo: outURL)
    let err = try FileHandle(forWritingTo: errURL)
    defer {
        try? out.close()
        try? err.close()
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    if let directory { process.currentDirectoryURL = directory }
    process.standardOutput = out
    process.standardError = err
    try process.run()
    var status = exitStatus(of: process, waitingUntil: Date().addingTimeInterval(timeoutSeconds))
    if status == nil {
        kill(process.processIdentifier, SIGKILL)
        Issue.record("\(executable) timed out")
        status = exitStatus(of: process, waitingUntil: Date().addingTimeInterval(30))
    }
    return ProcessResult(
        status: status ?? -1,
        output: String(decoding: (try? Data(contentsOf: outURL)) ?? Data(), as: UTF8.self),
        error: String(decoding: (try? Data(contentsOf: errURL)) ?? Data(), as: UTF8.self))
}

/// A `tollgated` child process on a free port.
/// Unchecked: a test's own handle on a child process, used from one test at a time.
/// How `process` ended — its exit code, or the signal that ended it — or nil if it still runs at `deadline`.
///
/// Foundation's own watch (`isRunning`, `waitUntilExit`) misses, now and then, the end of a child that exits
/// while many are started at once: the child stays a zombie, and `waitUntilExit` never returns. So this also
/// reaps the child itself (`waitpid`), whichever of the two sees it first.
func exitStatus(of process: Process, waitingUntil deadline: Date) -> Int32? {
    let pid = process.processIdentifier
    while Date() < deadline {
        if !process.isRunning { return process.terminationStatus }
        var status: Int32 = 0
        let reaped = waitpid(pid, &status, WNOHANG)
        if reaped == pid {
            // Exited: its code; ended by a signal: the signal's number (as Foundation reports it).
            return status & 0x7f == 0 ? (status >> 8) & 0xff : status & 0x7f
        }
        usleep(20_000)
    }
    return nil
}

final class ServerProcess: @unchecked Sendable {
    let process = Process()
    let port: Int
    let output = Pipe()
    let errors = Pipe()
    /// Where a program started with `launch` writes both its streams (its pipes above are then unused).
    private var log: URL?

    /// Starts `tollgated` and waits, off the pool, until it listens.
    static func start(directory: URL, environment: [String: String]) async throws -> ServerProcess {
        try await offPool { try ServerProcess(directory: directory, environment: environment) }
    }

    private init(directory: URL, environment: [String: String]) throws {
        port = try freePort()
        process.executableURL = URL(fileURLWithPath: Products.path("tollgated"))
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            .merging(["TOLLGATE_LISTEN": "127.0.0.1:\(port)"]) { $1 }
        process.currentDirectoryURL = directory
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        try waitUntilListening()
    }

    /// Starts any program that listens on `port` (an MCP server, the HTTP proxy) and waits, off the pool, until
    /// it does. Its output goes to `log` (a file: a chatty child never blocks on a full pipe).
    static func launch(
        _ executable: String, _ arguments: [String], port: Int, environment: [String: String] = [:], log: URL
    ) async throws -> ServerProcess {
        try await offPool {
            try ServerProcess(
                executable: executable, arguments: arguments, port: port, environment: environment, log: log)
        }
    }

    private init(executable: String, arguments: [String], port: Int, environment: [String: String], log: URL) throws {
        self.port = port
        self.log = log
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let sink = try FileHandle(forWritingTo: log)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = sink
        process.standardError = sink
        try process.run()
        // A Python MCP server imports for seconds, more while the whole suite runs on two cores.
        do { try waitUntilListening(seconds: 90) } catch {
            kill(process.processIdentifier, SIGKILL)
            _ = exitStatus(of: process, waitingUntil: Date().addingTimeInterval(30))
            throw error
        }
    }

    var address: String { "127.0.0.1:\(port)" }

    /// Long enough for a start under the whole suite's load (dozens of servers and children on two cores; a
    /// PostgreSQL-backed start has been seen to take over 10 s there).
    private func waitUntilListening(seconds: Double = 60) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            close(fd)
            if connected == 0 { return }
            if !process.isRunning { throw POSIXError(.ECHILD) }
            usleep(20_000)
        }
        throw POSIXError(.ETIMEDOUT)
    }

    func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// Waits, off the pool, for the process to exit and returns its status.
    func wait() async -> Int32 {
        (try? await offPool { [process] in
            exitStatus(of: process, waitingUntil: Date().addingTimeInterval(120)) ?? -1
        }) ?? -1
    }

    /// What the process wrote to standard output, to its end: call only once it has exited.
    func standardOutput() -> String {
        if let log { return (try? String(contentsOf: log, encoding: .utf8)) ?? "" }
        return String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }
    /// What the process wrote to standard error, to its end: call only once it has exited.
    func standardError() -> String {
        if let log { return (try? String(contentsOf: log, encoding: .utf8)) ?? "" }
        return String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    /// Stops with `signal` and returns the exit status, with the server's log when it is not 0.
    func stop(with signal: Int32 = SIGTERM) async -> (status: Int32, log: String) {
        self.signal(signal)
        let status = await wait()
        if status == 0 { return (status, "") }
        // Off the pool: reading a pipe to its end blocks the thread, and the pool has one per core.
        return (status, (try? await offPool { [self] in standardError() }) ?? "")
    }

    /// A last resort, so SIGKILL: a child started from a pool thread may block SIGTERM (see `runBlocking`).
    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
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
