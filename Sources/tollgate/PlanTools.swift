import ArgumentParser
import Foundation
import TollgateCore
import TollgateJSON
import TollgatePricing
import TollgateStrategies

extension Plans {
    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what changed between two versions of a plan, field by field.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The plan id.") var planId: String
        @Argument(help: "The older version.") var from: Int
        @Argument(help: "The newer version.") var to: Int
        func run() async throws {
            let old = try await options.request(
                "plans.get", ["planId": .string(planId), "version": .integer(Int64(from))])
            let new = try await options.request(
                "plans.get", ["planId": .string(planId), "version": .integer(Int64(to))])
            let changes = PlanDiff.changes(from: old["document"] ?? .null, to: new["document"] ?? .null)
            if options.json {
                print(
                    JSONCodec.string([
                        "changes": .array(
                            changes.map { change in
                                ["path": .string(change.path), "old": change.old ?? .null, "new": change.new ?? .null]
                            })
                    ]))
                return
            }
            if changes.isEmpty {
                print("versions \(from) and \(to) are the same")
                return
            }
            for change in changes {
                let old = change.old.map { JSONCodec.string($0) } ?? "(absent)"
                let new = change.new.map { JSONCodec.string($0) } ?? "(absent)"
                print("\(change.path): \(old) → \(new)")
            }
        }
    }

    struct Simulate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rate sample usage offline with a plan file and print the invoice preview, line by line.",
            discussion: """
                Each line of the events file is one call, written like meter.verify's params plus the caller:
                {"tool":"search","quantity":1,"agentId":"agt_1","sessionId":"s1","usage":{"inputTokens":2400,\
                "outputTokens":150,"durationMs":847,"status":"SUCCESS","providerCost":"0.0021"}}
                The calls are rated in file order as one billing period, exactly as the server would rate them.
                """)
        @Argument(help: "Path of the plan's JSON file.") var plan: String
        @Option(name: .long, help: "Path of the events file (JSON Lines).") var events: String
        @Flag(name: .long, help: "Print JSON instead of a table.") var json = false

        func run() async throws {
            let compiled: Plan
            do {
                compiled = try PlanDocument(json: try readJSON(plan)).compile(
                    id: "simulated", version: 1, registry: .builtIn)
            } catch let error as PlanValidationError {
                throw CLIError("\(plan): \(error.field): \(error.rule)")
            }
            guard let data = FileManager.default.contents(atPath: events) else {
                throw CLIError("cannot read \(events)")
            }
            var rated: [RatedEvent] = []
            for (index, line) in String(decoding: data, as: UTF8.self).split(
                separator: "\n", omittingEmptySubsequences: false
            ).enumerated() {
                let text = line.trimmingCharacters(in: .whitespaces)
                if text.isEmpty { continue }
                do { rated.append(try SimulatedEvent.parse(text)) } catch {
                    throw CLIError("\(events):\(index + 1): \(error)")
                }
            }
            let preview: InvoicePreview
            do { preview = try InvoicePreview(plan: compiled, events: rated) } catch {
                throw CLIError("the events price beyond the range of money (\(error))")
            }
            if json {
                print(
                    JSONCodec.string([
                        "currency": .string(preview.currency), "events": .integer(Int64(preview.events)),
                        "lines": .array(
                            preview.lines.map {
                                [
                                    "description": .string($0.description), "exact": .string($0.exact.decimalString),
                                    "amount": .string($0.amount.decimalString),
                                ]
                            }),
                        "total": .string(preview.total.decimalString),
                    ]))
                return
            }
            let digits = Currency.minorUnitDigits(preview.currency)
            let width = max(40, preview.lines.map(\.description.count).max() ?? 0)
            print("invoice preview: \(compiled.name), \(preview.events) events, \(preview.currency)")
            for line in preview.lines {
                print(
                    line.description.padding(toLength: width + 2, withPad: " ", startingAt: 0)
                        + Self.fixed(line.amount, digits))
            }
            print("total".padding(toLength: width + 2, withPad: " ", startingAt: 0) + Self.fixed(preview.total, digits))
        }

        /// `12.5` with 2 digits → `12.50`: invoice amounts show every digit of the minor unit.
        static func fixed(_ money: Money, _ digits: Int) -> String {
            var text = money.decimalString
            guard digits > 0 else { return text }
            if !text.contains(".") { text += "." }
            let fraction = text.count - 1 - text.distance(from: text.startIndex, to: text.firstIndex(of: ".")!)
            return text + String(repeating: "0", count: max(0, digits - fraction))
        }

        func readJSON(_ path: String) throws -> JSONValue {
            guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("cannot read \(path)") }
            do { return try JSONCodec.parse(Array(data)) } catch {
                throw CLIError("\(path) is not valid JSON: \(error)")
            }
        }
    }
}

/// One line of a `plans simulate` events file.
enum SimulatedEvent {
    struct Invalid: Error, CustomStringConvertible {
        var description: String
    }

    static func parse(_ text: String) throws -> RatedEvent {
        let value: JSONValue
        do { value = try JSONCodec.parse(Array(text.utf8)) } catch {
            throw Invalid(description: "not valid JSON: \(error)")
        }
        guard let object = value.objectValue else { throw Invalid(description: "not a JSON object") }
        let known = ["tool", "quantity", "agentId", "sessionId", "usage"]
        for key in object.keys.sorted() where !known.contains(key) {
            throw Invalid(description: "\(key): not an event field (\(known.joined(separator: ", ")))")
        }
        guard let tool = object["tool"]?.stringValue, !tool.isEmpty else {
            throw Invalid(description: "tool: a non-empty string")
        }
        let usage = object["usage"]?.objectValue ?? [:]
        func count(_ value: JSONValue?, _ name: String, minimum: Int64 = 0, default fallback: Int64 = 0) throws -> Int64
        {
            guard let value else { return fallback }
            guard let number = value.int64Value, number >= minimum, number <= 1_000_000_000_000 else {
                throw Invalid(description: "\(name): a whole number from \(minimum) to 10^12")
            }
            return number
        }
        var providerCost = Money.zero
        if let cost = usage["providerCost"] {
            guard let text = cost.stringValue, let money = try? Money(decimal: text), money >= .zero else {
                throw Invalid(description: "usage.providerCost: a non-negative decimal string")
            }
            providerCost = money
        }
        return RatedEvent(
            tool: tool, quantity: try count(object["quantity"], "quantity", minimum: 1, default: 1),
            inputTokens: try count(usage["inputTokens"], "usage.inputTokens"),
            outputTokens: try count(usage["outputTokens"], "usage.outputTokens"),
            reasoningTokens: try count(usage["reasoningTokens"], "usage.reasoningTokens"),
            durationMs: try count(usage["durationMs"], "usage.durationMs"), providerCost: providerCost,
            agentId: object["agentId"]?.stringValue ?? "", sessionId: object["sessionId"]?.stringValue,
            status: usage["status"]?.stringValue)
    }
}
