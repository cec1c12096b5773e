import Foundation
import Testing

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

/// `run`, blocking the calling thread.
func runBlocking(
    _ executable: String, _ arguments: [String], environment: [String: String] = [:], directory: URL? = nil,
    timeoutSeconds: Double = 60
) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    if let directory { process.currentDirectoryURL = directory }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let deadline = Date().addingTimeInterval(timeoutSeconds)
    let outData = Mutable(Data())
    let errData = Mutable(Data())
    let group = DispatchGroup()
    for (pipe, sink) in [(out, outData), (err, errData)] {
        group.enter()
        DispatchQueue.global().async {
            sink.value = pipe.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
    }
    while process.isRunning && Date() < deadline { usleep(20_000) }
    if process.isRunning {
        process.terminate()
        Issue.record("\(executable) timed out")
    }
    process.waitUntilExit()
    group.wait()
    return ProcessResult(
        status: process.terminationStatus, output: String(decoding: outData.value, as: UTF8.self),
        error: String(decoding: errData.value, as: UTF8.self))
}

final class Mutable<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}

/// A `tollgated` child process on a free port.
/// Unchecked: a test's own handle on a child process, used from one test at a time.
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    let port: Int
    let output = Pipe()
    let errors = Pipe()

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

    var address: String { "127.0.0.1:\(port)" }

    private func waitUntilListening() throws {
        for _ in 0..<500 {
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
            process.waitUntilExit()
            return process.terminationStatus
        }) ?? -1
    }

    func standardOutput() -> String {
        String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }
    func standardError() -> String {
        String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    /// Stops with `signal` and returns the exit status, with the server's log when it is not 0.
    func stop(with signal: Int32 = SIGTERM) async -> (status: Int32, log: String) {
        self.signal(signal)
        let status = await wait()
        return (status, status == 0 ? "" : standardError())
    }

    deinit { if process.isRunning { process.terminate() } }
}
