import Foundation
import Testing

/// The README's five-minute walkthrough, run exactly as written, against the built binaries.
@Suite struct WalkthroughTests {
    /// The shell block between `<!-- name:start -->` and `<!-- name:end -->` in the README.
    static func walkthroughScript(_ name: String = "walkthrough") throws -> String {
        let readme = try String(contentsOf: Products.repository.appendingPathComponent("README.md"), encoding: .utf8)
        guard let start = readme.range(of: "<!-- \(name):start -->"),
            let end = readme.range(of: "<!-- \(name):end -->"), start.upperBound < end.lowerBound
        else {
            throw CocoaError(.fileReadCorruptFile)
        }
        let block = readme[start.upperBound..<end.lowerBound]
        guard let open = block.range(of: "```sh\n"),
            let close = block.range(of: "```", range: open.upperBound..<block.endIndex)
        else { throw CocoaError(.fileReadCorruptFile) }
        return String(block[open.upperBound..<close.lowerBound])
    }

    /// Runs the README's `name` section in a scratch directory holding the repository's `shared` folders (it runs
    /// from the repository root), its server on a free port. The port is free when chosen, not when `tollgated`
    /// binds it: another test's server can take it in between, so a run whose server could not bind is run again
    /// on another port, in a fresh directory.
    static func runSection(
        _ name: String, shared: [String], environment extra: [String: String] = [:], timeoutSeconds: Double
    ) async throws -> (result: ProcessResult, directory: URL) {
        var attempt = 0
        while true {
            attempt += 1
            let directory = try temporaryDirectory()
            for folder in shared {
                try FileManager.default.createSymbolicLink(
                    at: directory.appendingPathComponent(folder),
                    withDestinationURL: Products.repository.appendingPathComponent(folder))
            }
            let port = try freePort()
            var environment = [
                "PATH": Products.directory.path + ":"
                    + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"),
                "TOLLGATE_LISTEN": "127.0.0.1:\(port)", "TOLLGATE_ADDRESS": "127.0.0.1:\(port)",
                "TOLLGATE_TOKEN": "", "TOLLGATE_CONFIG": "",
            ]
            environment.merge(extra) { _, given in given }
            let result = try await run(
                "/bin/bash", ["-euo", "pipefail", "-c", try Self.walkthroughScript(name)],
                environment: environment, directory: directory, timeoutSeconds: timeoutSeconds)
            let log =
                (try? String(contentsOf: directory.appendingPathComponent("tollgated.log"), encoding: .utf8)) ?? ""
            if result.status != 0, log.contains("Address already in use"), attempt < 3 { continue }
            return (result, directory)
        }
    }

    @Test func readmeWalkthrough_paysUntilTheCapRefuses() async throws {
        let (result, directory) = try await Self.runSection("walkthrough", shared: ["Config"], timeoutSeconds: 120)
        #expect(result.status == 0, "walkthrough failed:\n\(result.output)\n\(result.error)")
        #expect(result.error.contains("BUDGET_EXCEEDED"))
        #expect(result.error.contains("resets at"))
        // Four receipts, then the usage table: one row, transform, 4 calls, 1 USD.
        #expect(result.output.components(separatedBy: "receiptId").count - 1 == 4)
        let row = result.output.split(separator: "\n").first { $0.hasPrefix("transform") }
        #expect(row?.split(separator: " ", omittingEmptySubsequences: true).prefix(3) == ["transform", "4", "4"])
        #expect(row?.contains(" 1 ") == true || row?.hasSuffix(" 0") == true)
        let log = try String(contentsOf: directory.appendingPathComponent("tollgated.log"), encoding: .utf8)
        #expect(log.contains("stopped"))
        #expect(!log.contains("walkthrough-root-token"), "a token was logged")
    }

    /// "Meter an MCP server in one command", run as written: a fresh virtual environment from PyPI, the proxy in
    /// front of the reference time server, two calls, and the charges in `tollgate usage summary`. It needs Python
    /// and PyPI, so it runs where the MCP scenarios do (`TOLLGATE_TEST_MCP_PYTHON`, which `.ci/run` sets).
    @Test(.enabled(if: mcpPython != nil, "set TOLLGATE_TEST_MCP_PYTHON to run the MCP scenarios"))
    func readmeMCPSection_metersTwoCallsOfAnUnmodifiedServer() async throws {
        let state = try temporaryDirectory().path
        let (result, _) = try await Self.runSection(
            "mcp", shared: ["Config", "Integration"], environment: ["XDG_STATE_HOME": state], timeoutSeconds: 600)
        #expect(result.status == 0, "the MCP section failed:\n\(result.output)\n\(result.error)")
        // Two results from the time server, neither a tool error, then the usage table: get_current_time, 2 calls.
        #expect(result.output.components(separatedBy: "\"timezone\": \"UTC\"").count - 1 == 2, "\(result.output)")
        #expect(!result.output.contains("tool error"))
        let row = result.output.split(separator: "\n").first { $0.hasPrefix("get_current_time") }
        #expect(
            row?.split(separator: " ", omittingEmptySubsequences: true).prefix(3) == ["get_current_time", "2", "2"])
        #expect(row?.contains("0.004") == true, "\(row ?? "")")
        #expect(!result.error.contains("mcp-walkthrough-root-token") && !result.output.contains("AGT-"))
    }
}
