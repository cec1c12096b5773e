import Foundation
import Testing
import TollgateCore
import TollgateJSON
import TollgateTesting

/// The invoice commands against a server whose clock the test moves: `periods list | close`, `invoices show |
/// export | trace`, and the HTML invoice rendered by a real browser (headless Chromium) when there is one.
@Suite struct InvoiceCommandsTests {
    @Test func closeShowExportAndTrace_fromTheCommandLine() async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-01T09:00:00Z")!)
        try await TestServer.with(clock: clock) { server in
            let root = try await server.connect(token: TestServer.rootToken)
            let tenant = try await root.call("tenants.create", ["name": "Acme MCP Tools"])
            let op = tenant["operatorToken"]!.stringValue!
            let tollgate = TollgateCommand(address: server.address, token: op)
            func value(_ arguments: [String]) async throws -> String { try await tollgate.value(arguments) }
            let (customer, subscription, agent) = try await dailyCustomer(
                on: server, tollgate, ["Kiwi & Co <Ltd>", "--time-zone", "UTC"])
            for call in 0..<3 {
                _ = try await agent.call("meter.verify", ["tool": "transform", "idempotencyKey": .string("t\(call)")])
            }
            _ = try await agent.call("meter.verify", ["tool": "search", "idempotencyKey": "s0"])

            // Today is open: its revenue so far is what closing it will invoice; tomorrow, it can be closed.
            let revenue = try await value(["reports", "revenue"])
            #expect(revenue.contains("0.75") && revenue.contains("Kiwi & Co <Ltd>"), "\(revenue)")
            _ = try await tollgate(["periods", "close", "--subscription", subscription], expecting: 1)
            clock.set(Timestamp.parse("2026-12-02T00:00:01Z")!)
            let listed = try await value(["periods", "list", "--subscription", subscription, "--json"])
            #expect(listed.contains(#""state":"ended""#) && listed.contains(#""state":"open""#), "\(listed)")
            let shown = try await value(["periods", "close", "--subscription", subscription])
            #expect(
                shown.contains("Total: 0.75 USD") && shown.contains("L1") && shown.contains("transform"), "\(shown)")
            let invoiceId = try await value([
                "periods", "close", "--subscription", subscription, "--get", "invoiceId",
            ])
            #expect(try await value(["invoices", "show", invoiceId]) == shown.trimmingCharacters(in: .newlines))

            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-\(UUID())")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let csv = directory.appendingPathComponent("invoice.csv")
            _ = try await tollgate(["invoices", "export", invoiceId, "--format", "csv", "--output", csv.path])
            let rows = try String(contentsOf: csv, encoding: .utf8).components(separatedBy: "\r\n").filter {
                !$0.isEmpty
            }
            #expect(rows.count == 3 && rows[1].contains(",search,") && rows[2].contains(",transform,"), "\(rows)")
            let json = try JSONCodec.parse(
                Array(try await value(["invoices", "export", invoiceId, "--format", "json"]).utf8))
            #expect(json["total"] == "0.75" && json["lines"]?.arrayValue?.count == 2)

            let trace = directory.appendingPathComponent("trace.csv")
            let traced = try await tollgate(["invoices", "trace", invoiceId, "--line", "L2", "--output", trace.path])
            let traceRows = try String(contentsOf: trace, encoding: .utf8).components(separatedBy: "\r\n").filter {
                !$0.isEmpty
            }
            #expect(traceRows.count == 1 + 3 && traceRows.dropFirst().allSatisfy { $0.contains(",0.25,USD") })
            #expect(traced.error.contains("3 events; line L2 sums to 0.75"), "\(traced.error)")
            _ = try await tollgate(["invoices", "trace", invoiceId, "--line", "L7"], expecting: 1)

            let html = directory.appendingPathComponent("invoice.html")
            _ = try await tollgate(["invoices", "export", invoiceId, "--format", "html", "--output", html.path])
            let page = try String(contentsOf: html, encoding: .utf8)
            #expect(page.contains("Kiwi &amp; Co &lt;Ltd&gt;") && page.contains("Acme MCP Tools"))
            try await Self.renderInChromium(html, in: directory)

            // Voided, it says so in every form, with why.
            let voided = try await tollgate(["invoices", "void", invoiceId, "--reason", "issued twice"])
            #expect(voided.output.contains("(void)") && voided.output.contains("VOID since"), "\(voided.output)")
            #expect(voided.output.contains("issued twice"))
            _ = try await tollgate(["invoices", "export", invoiceId, "--format", "html", "--output", html.path])
            #expect(try String(contentsOf: html, encoding: .utf8).contains("class=\"void\">VOID since"))
            let again = try await tollgate(["invoices", "void", invoiceId, "--get", "status"])
            #expect(again.output.trimmingCharacters(in: .whitespacesAndNewlines) == "void")
            _ = try await tollgate(["invoices", "void", "inv_nope"], expecting: 1)

            // Margin per tool over everything charged: the table and its JSON.
            let margin = try await tollgate(["reports", "margin", "--group-by", "tool", "--json"])
            let report = try JSONCodec.parse(margin.output.trimmingCharacters(in: .whitespacesAndNewlines))
            #expect(report["groupBy"] == ["tool"] && report["rows"]?.arrayValue?.isEmpty == false, "\(report)")
            #expect(report["totals"]?.arrayValue?.first?["negative"] == .bool(false))
            let table = try await tollgate(["reports", "margin"])
            #expect(table.output.contains("revenue") && table.output.contains("providerCost"), "\(table.output)")
            _ = try await tollgate(["reports", "margin", "--group-by", "planet"], expecting: 1)
        }
    }

    /// Renders the page in headless Chromium and checks the screenshot is a real page, not a blank one; skipped
    /// (with a note) where there is no Chromium. The screenshot is kept in `TOLLGATE_TEST_ARTIFACTS` if set.
    static func renderInChromium(_ html: URL, in directory: URL) async throws {
        guard
            let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first(where: {
                FileManager.default.isExecutableFile(atPath: $0)
            })
        else {
            print("InvoiceCommandsTests: no Chromium here; the HTML invoice was not rendered")
            return
        }
        let png = directory.appendingPathComponent("invoice.png")
        let result = try await run(
            chromium,
            [
                "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=900,1100",
                "--screenshot=\(png.path)", html.absoluteString,
            ], environment: ["HOME": directory.path], timeoutSeconds: 120)
        #expect(result.status == 0, "\(result.error)")
        let image = try Data(contentsOf: png)
        #expect(image.starts(with: [0x89, 0x50, 0x4E, 0x47]), "a PNG")
        // A blank white page compresses to a few kilobytes; a rendered invoice, with text and rules, to far more.
        #expect(image.count > 20_000, "the screenshot is \(image.count) bytes")
        if let artifacts = ProcessInfo.processInfo.environment["TOLLGATE_TEST_ARTIFACTS"] {
            try? image.write(to: URL(fileURLWithPath: artifacts).appendingPathComponent("invoice.png"))
        }
    }
}
