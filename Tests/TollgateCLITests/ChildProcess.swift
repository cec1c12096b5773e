import Foundation
import Subprocess
import Synchronization
import SystemPackage
import Testing

/// A program a test starts, with its standard output and error written to files of its own.
///
/// Started with swift-subprocess rather than Foundation's `Process`: on Linux, `Process.run()` lists
/// `/proc/self/fd` to decide what the child must not inherit, and copies each entry's whole fixed-size name field
/// out of the directory buffer; with the ~1,500 descriptors this test process holds at its busiest, the last entry
/// can sit at the end of that buffer and the copy reads past it — the suite once died of SIGSEGV there. Subprocess
/// closes every inherited descriptor in the child itself (closefrom), resets the signal mask a pool thread
/// blocks, and reaps the child through a pidfd, so no zombie is ever missed.
///
/// Output goes to files, never pipes: a test reads it once the program has ended, or polls the file while it runs,
/// and a chatty program never blocks on a full pipe.
final class ChildProcess: Sendable {
    let pid: pid_t
    let outputFile: URL
    let errorFile: URL
    /// The program's end, once it has ended and been reaped: its exit code, or the number of the signal that
    /// ended it (-1 if it could not be watched). From then on its pid may be another process's: never signalled.
    private let ended: Ending

    private init(pid: pid_t, outputFile: URL, errorFile: URL, ended: Ending) {
        self.pid = pid
        self.outputFile = outputFile
        self.errorFile = errorFile
        self.ended = ended
    }

    /// Starts `executable` with this process's environment updated by `environment`, in `directory` if given.
    /// With `errorsToOutput`, standard error goes to the output file too (one log, in the order written).
    static func start(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:], directory: URL? = nil,
        outputFile: URL? = nil, errorsToOutput: Bool = false
    ) async throws -> ChildProcess {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-child-\(UUID())")
        if outputFile == nil || !errorsToOutput {
            try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        }
        let outputFile = outputFile ?? scratch.appendingPathComponent("out")
        let errorFile = errorsToOutput ? outputFile : scratch.appendingPathComponent("err")
        // Opened to append, so that two descriptors on one log (output and error) never overwrite each other.
        func sink(_ url: URL) throws -> FileDescriptor {
            try FileDescriptor.open(
                FilePath(url.path), .writeOnly, options: [.create, .append], permissions: [.ownerReadWrite])
        }
        let output = try sink(outputFile)
        let error: FileDescriptor
        do { error = try sink(errorFile) } catch {
            try? output.close()
            throw error
        }
        var merged = ProcessInfo.processInfo.environment
        merged.merge(environment) { $1 }
        let configuration = Configuration(
            executable: .path(FilePath(executable)), arguments: Arguments(arguments),
            environment: .custom(
                Dictionary(uniqueKeysWithValues: merged.map { (Environment.Key(stringLiteral: $0.key), $0.value) })),
            workingDirectory: directory.map { FilePath($0.path) })

        // The child's pid comes out of the body of `run`, which then returns: `run` itself waits for the end.
        let (started, starting) = AsyncStream.makeStream(of: pid_t.self)
        let ended = Ending()
        let watch = Task<Void, any Error> {
            defer { starting.finish() }
            // Whatever happens, the end is recorded: a wait never outlasts its bound for want of it.
            var status: Int32 = -1
            defer { ended.state.withLock { $0 = status } }
            let result = try await Subprocess.run(
                configuration, input: .none,
                output: .fileDescriptor(output, closeAfterSpawningProcess: true),
                error: .fileDescriptor(error, closeAfterSpawningProcess: true)
            ) { execution in
                starting.yield(execution.processIdentifier.value)
            }
            switch result.terminationStatus {
            case .exited(let code): status = code
            case .signaled(let signal): status = signal
            }
        }
        for await pid in started {
            return ChildProcess(pid: pid, outputFile: outputFile, errorFile: errorFile, ended: ended)
        }
        // It never started: `watch` holds why.
        try await watch.value
        throw POSIXError(.ECHILD)
    }

    func signal(_ signal: Int32) { ended.state.withLock { if $0 == nil { _ = kill(pid, signal) } } }

    /// The program's exit code (or ending signal), or nil if it still runs after `seconds`.
    ///
    /// Polled, not awaited: awaiting the watching task's value cannot be cancelled, so a wait bounded by a sleep
    /// beside it in a task group would still last until the program ends.
    func wait(seconds: Double) async -> Int32? {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while true {
            if let status = ended.state.withLock({ $0 }) { return status }
            if ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits until the program ends, killing it (SIGKILL) if it still runs after `seconds`; records an issue then.
    func finish(within seconds: Double, name: String) async -> Int32 {
        if let status = await wait(seconds: seconds) { return status }
        Issue.record("\(name) timed out after \(seconds) s")
        signal(SIGKILL)
        return await wait(seconds: 30) ?? -1
    }

    /// What the program has written to standard output so far.
    var output: String { (try? String(contentsOf: outputFile, encoding: .utf8)) ?? "" }
    /// What the program has written to standard error so far.
    var errors: String { (try? String(contentsOf: errorFile, encoding: .utf8)) ?? "" }

    /// A last resort for a test that ends early: nothing a test started outlives it.
    deinit { signal(SIGKILL) }
}

/// A child's end, shared between the task that watches it and its handle.
private final class Ending: Sendable {
    let state = Mutex<Int32?>(nil)
}
