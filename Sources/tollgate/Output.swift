import Foundation
import TollgateCore
import TollgateJSON

/// How results are shown: a table for people, JSON or one field for scripts.
enum Output {
    static func print(_ result: JSONValue, json: Bool, field: String?) throws {
        if let field {
            guard let value = result[field] else { throw CLIError("the result has no field \(field)") }
            Swift.print(scalar(value))
        } else if json {
            Swift.print(JSONCodec.string(result))
        } else {
            Swift.print(table(result), terminator: "")
        }
    }

    static func scalar(_ value: JSONValue) -> String {
        switch value {
        case .string(let text): text
        case .integer(let number): String(number)
        case .number(let number): String(number)
        case .bool(let flag): String(flag)
        case .null: ""
        case .array, .object: JSONCodec.string(value)
        }
    }

    /// An object prints as `key  value` lines; an array of objects within it (rows, plans, tenants) prints
    /// as a table with a header.
    static func table(_ result: JSONValue) -> String {
        guard case .object(let object) = result else { return scalar(result) + "\n" }
        var text = ""
        var lists: [(String, [JSONValue])] = []
        let width = object.keys.map(\.count).max() ?? 0
        for key in object.keys.sorted() {
            let value = object[key]!
            if case .array(let items) = value, items.contains(where: { $0.objectValue != nil }) {
                lists.append((key, items))
                continue
            }
            text += key.padding(toLength: width + 2, withPad: " ", startingAt: 0) + scalar(value) + "\n"
        }
        for (name, items) in lists {
            text += "\n" + grid(items, title: name)
        }
        return text
    }

    static func grid(_ items: [JSONValue], title: String) -> String {
        let objects = items.compactMap(\.objectValue)
        // Group keys and names first, figures after, so a table reads left to right like a report.
        let figures = ["calls", "quantity", "inputTokens", "outputTokens", "cost", "providerCost", "retries"]
        let keys = Set(objects.flatMap(\.keys))
        let columns = keys.filter { !figures.contains($0) }.sorted() + figures.filter(keys.contains)
        let cells = objects.map { object in columns.map { object[$0].map(scalar) ?? "" } }
        let widths = columns.indices.map { index in max(columns[index].count, cells.map { $0[index].count }.max() ?? 0)
        }
        func line(_ values: [String]) -> String {
            zip(values, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces) + "\n"
        }
        var text = "\(title):\n" + line(columns) + line(widths.map { String(repeating: "-", count: $0) })
        for row in cells { text += line(row) }
        if objects.isEmpty { text += "(none)\n" }
        return text
    }
}
