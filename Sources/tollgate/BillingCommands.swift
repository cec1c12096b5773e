import ArgumentParser
import Foundation
import TollgateBilling
import TollgateJSON

/// `tollgate periods list | close`.
struct Periods: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Billing periods: list a subscription's, close one that has ended into its invoice.",
        subcommands: [List.self, Close.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A subscription's periods, the latest first: open, ended or closed (with its invoice).")
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "The subscription id.") var subscription: String
        @Option(name: .long, help: "How many periods (1-1000; default 24).") var limit: Int?
        func run() async throws {
            var params: [String: JSONValue] = ["subscriptionId": .string(subscription)]
            params.set("limit", limit)
            try await options.call("periods.list", params)
        }
    }

    struct Close: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Close a period into its invoice (the latest ended one by default); closing again shows it.")
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "The subscription id.") var subscription: String
        @Option(name: .long, help: "The start of the period to close (RFC 3339), as periods list shows it.")
        var periodStart: String?
        func run() async throws {
            var params: [String: JSONValue] = ["subscriptionId": .string(subscription)]
            params.set("periodStart", periodStart)
            let result = try await options.request("periods.close", params)
            try Invoices.show(result, options: options)
        }
    }
}

/// `tollgate reports revenue`.
struct Reports: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Reports: revenue so far in each customer's open period; margin over any window.",
        subcommands: [Revenue.self, Margin.self])

    struct Margin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revenue, provider cost and margin per customer (or agent, tool, team…) over a window.",
            discussion: "A row whose providers cost more than it was charged is marked NEGATIVE.")
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "Group by customer (the default), agent, tool, team, session, day or model.")
        var groupBy: [String] = []
        @Option(name: .long, help: "Only this customer.") var customer: String?
        @Option(name: .long, help: "From this time (RFC 3339, inclusive).") var from: String?
        @Option(name: .long, help: "To this time (RFC 3339, exclusive).") var to: String?
        func run() async throws {
            var params: [String: JSONValue] = ["groupBy": .array(groupBy.map(JSONValue.string))]
            params.set("customerId", customer)
            params.set("from", from)
            params.set("to", to)
            var result = try await options.request("reports.margin", params)
            if !options.json, options.get == nil, var fields = result.objectValue {
                // In the table, a negative margin says so in words.
                for key in ["rows", "totals"] {
                    fields[key] = .array(
                        (fields[key]?.arrayValue ?? []).map { row in
                            var row = row.objectValue ?? [:]
                            row["negative"] = row["negative"] == .bool(true) ? "NEGATIVE" : ""
                            return .object(row)
                        })
                }
                result = .object(fields)
            }
            try Output.print(result, json: options.json, field: options.get)
        }
    }

    struct Revenue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Each customer's open period so far: what closing it now would invoice (subtotal, tax, total).")
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "Only this customer.") var customer: String?
        func run() async throws {
            var params: [String: JSONValue] = [:]
            params.set("customerId", customer)
            var result = try await options.request("reports.revenue", params)
            if !options.json, options.get == nil, var fields = result.objectValue {
                // The table shows the totals; --json has each customer's lines too.
                fields["customers"] = .array(
                    (fields["customers"]?.arrayValue ?? []).map { customer in
                        var row = customer.objectValue ?? [:]
                        row["lines"] = nil
                        return .object(row)
                    })
                result = .object(fields)
            }
            try Output.print(result, json: options.json, field: options.get)
        }
    }
}

/// `tollgate invoices list | show | export | trace`.
struct Invoices: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Invoices: list them, show one, export it as JSON, CSV or HTML, trace a line to its events, void one.",
        subcommands: [List.self, Show.self, Export.self, Trace.self, VoidInvoice.self])

    /// An invoice as text (or as the options ask: --json, --get).
    static func show(_ result: JSONValue, options: GlobalOptions) throws {
        guard !options.json, options.get == nil else {
            try Output.print(result, json: options.json, field: options.get)
            return
        }
        print(InvoiceRendering.text(try invoice(result)), terminator: "")
    }

    static func invoice(_ result: JSONValue) throws -> Invoice {
        do { return try Invoice(json: result, tenantId: "") } catch {
            throw CLIError("the server's invoice cannot be read (field \(error.field))")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Invoices, the latest period first.")
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "Only this customer's.") var customer: String?
        @Option(name: .long, help: "Only this subscription's.") var subscription: String?
        @Option(name: .long, help: "How many (1-1000; default 100).") var limit: Int?
        func run() async throws {
            var params: [String: JSONValue] = [:]
            params.set("customerId", customer)
            params.set("subscriptionId", subscription)
            params.set("limit", limit)
            try await options.call("invoices.list", params)
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One invoice, line by line, with its totals.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The invoice id.") var invoiceId: String
        func run() async throws {
            try Invoices.show(
                try await options.request("invoices.get", ["invoiceId": .string(invoiceId)]), options: options)
        }
    }

    struct VoidInvoice: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "void",
            abstract: "Void a finalized invoice: nothing is owed on it; its lines stay, for the record.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The invoice id.") var invoiceId: String
        @Option(name: .long, help: "Why (kept on the invoice and shown on it).") var reason: String?
        func run() async throws {
            var params: [String: JSONValue] = ["invoiceId": .string(invoiceId)]
            if let reason { params["reason"] = .string(reason) }
            try Invoices.show(try await options.request("invoices.void", params), options: options)
        }
    }

    enum Format: String, ExpressibleByArgument, CaseIterable { case json, csv, html }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write an invoice as JSON, CSV (a row per line) or a printable HTML page.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The invoice id.") var invoiceId: String
        @Option(name: .long, help: "json, csv or html.") var format: Format
        @Option(name: .long, help: "The file to write (default: standard output).") var output: String?
        func run() async throws {
            let result = try await options.request("invoices.get", ["invoiceId": .string(invoiceId)])
            let text: String =
                switch format {
                case .json: JSONCodec.string(result) + "\n"
                case .csv: InvoiceRendering.csv(try Invoices.invoice(result))
                case .html: InvoiceRendering.html(try Invoices.invoice(result))
                }
            try write(text, to: output)
        }
    }

    struct Trace: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Every event of an invoice line, with its provenance, as CSV: what a dispute needs.",
            discussion: """
                Columns: receipt_id, event_id, method, source, status, occurred_at, ingested_at, charged_at, agent_id,
                session_id, tool, quantity, input_tokens, output_tokens, reasoning_tokens, model, price, currency.
                The prices add up to the line's exact amount, which standard error shows with the count of events.
                """)
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The invoice id.") var invoiceId: String
        @Option(name: .long, help: "The line id (L1, L2, …).") var line: String
        @Option(name: .long, help: "The file to write (default: standard output).") var output: String?
        func run() async throws {
            let columns = [
                "receipt_id", "event_id", "method", "source", "status", "occurred_at", "ingested_at", "charged_at",
                "agent_id", "session_id", "tool", "quantity", "input_tokens", "output_tokens", "reasoning_tokens",
                "model", "price", "currency",
            ]
            var text = InvoiceRendering.csvRow(columns)
            var after: JSONValue = .null
            var lineTotal = "?"
            var count = 0
            repeat {
                let page = try await options.request(
                    "invoices.trace",
                    ["invoiceId": .string(invoiceId), "lineId": .string(line), "after": after, "limit": 1000])
                lineTotal = page["line"]?["exact"]?.stringValue ?? "?"
                for event in page["events"]?.arrayValue ?? [] {
                    let context = event["context"] ?? [:]
                    func field(_ value: JSONValue?) -> String { value.map(Output.scalar) ?? "" }
                    text += InvoiceRendering.csvRow([
                        field(context["receiptId"]), field(event["eventId"]), field(event["method"]),
                        field(event["source"]), field(event["status"]), field(event["occurredAt"]),
                        field(event["ingestedAt"]), field(context["chargedAt"]), field(context["agentId"]),
                        field(context["sessionId"]), field(context["tool"]), field(context["quantity"]),
                        field(context["inputTokens"]), field(context["outputTokens"]),
                        field(context["reasoningTokens"]),
                        field(context["model"]), field(context["price"]), field(context["currency"]),
                    ])
                    count += 1
                }
                after = page["next"] ?? .null
            } while after != .null
            try write(text, to: output)
            FileHandle.standardError.write(Data("\(count) events; line \(line) sums to \(lineTotal)\n".utf8))
        }
    }
}

/// Writes `text` to `path`, or to standard output without one.
private func write(_ text: String, to path: String?) throws {
    guard let path else {
        print(text, terminator: "")
        return
    }
    do { try Data(text.utf8).write(to: URL(fileURLWithPath: path)) } catch {
        throw CLIError("cannot write \(path): \(error.localizedDescription)")
    }
}
