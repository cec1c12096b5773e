import Foundation
import TollgateJSON

/// A file of usage events for `tollgate events upload`, read into the events `events.ingest` takes, each with its
/// line number (or a reason it could not be read, which the upload reports beside the server's rejections).
///
/// - **JSON Lines** (`.jsonl`, `.ndjson`, or any file whose first non-blank character is `{`): one event object
///   per line, exactly as `events.ingest` takes it. Blank lines are skipped.
/// - **CSV** (RFC 4180: a header row, fields separated by commas, quoted with `"` when they hold a comma, a quote
///   or a line break, `""` for a quote inside one). The header names the columns:
///   - `eventId`, `type`, `occurredAt`, `sessionId`, `tool`, `parentInvocationId` — text;
///   - `quantity`, `retryCount` — integers; `parallel` — `true` or `false`;
///   - `inputTokens`, `outputTokens`, `reasoningTokens` — integers, and `model`, `provider`, `providerCost`,
///     `action` — text: these go into the event's `properties`;
///   - `properties.NAME` — text, into `properties` under `NAME`.
///
///   An empty cell is an absent field. Any other column name is refused, so that a misspelt header is not silently
///   dropped from every event.
public enum EventFile {
    public enum Format: String, Sendable, CaseIterable {
        case jsonl, csv
    }

    /// One row of the file.
    public struct Row: Sendable {
        /// Its line in the file (1-based; for CSV, the line the row starts on).
        public var line: Int
        /// The event, or why the row is not one.
        public var event: Result<JSONValue, RowError>
    }

    public struct RowError: Error, Sendable, Hashable {
        public var message: String
        public init(_ message: String) { self.message = message }
    }

    /// The file's format from its name, else from its first character.
    public static func format(path: String, contents: String) -> Format {
        let lower = path.lowercased()
        if lower.hasSuffix(".csv") { return .csv }
        if lower.hasSuffix(".jsonl") || lower.hasSuffix(".ndjson") { return .jsonl }
        return contents.first(where: { !$0.isWhitespace }) == "{" ? .jsonl : .csv
    }

    /// Reads every row; throws only when the file as a whole cannot be read (a CSV header that names an unknown
    /// column, say).
    public static func rows(_ contents: String, format: Format) throws(RowError) -> [Row] {
        switch format {
        case .jsonl: return jsonLines(contents)
        case .csv: return try csv(contents)
        }
    }

    static func jsonLines(_ contents: String) -> [Row] {
        var rows: [Row] = []
        var line = 0
        for text in contents.split(separator: "\n", omittingEmptySubsequences: false) {
            line += 1
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            do {
                let value = try JSONCodec.parse(Array(trimmed.utf8))
                guard case .object = value else {
                    rows.append(Row(line: line, event: .failure(RowError("not a JSON object"))))
                    continue
                }
                rows.append(Row(line: line, event: .success(value)))
            } catch {
                rows.append(Row(line: line, event: .failure(RowError("not JSON: \(error)"))))
            }
        }
        return rows
    }

    /// The CSV columns and where each goes.
    enum Column: Hashable {
        case text(String)
        case integer(String)
        case flag(String)
        case propertyText(String)
        case propertyInteger(String)

        init?(header: String) {
            switch header {
            case "eventId", "type", "occurredAt", "sessionId", "tool", "parentInvocationId": self = .text(header)
            case "quantity", "retryCount": self = .integer(header)
            case "parallel": self = .flag(header)
            case "inputTokens", "outputTokens", "reasoningTokens": self = .propertyInteger(header)
            case "model", "provider", "providerCost", "action": self = .propertyText(header)
            default:
                guard header.hasPrefix("properties."), header.count > "properties.".count else { return nil }
                self = .propertyText(String(header.dropFirst("properties.".count)))
            }
        }
    }

    static func csv(_ contents: String) throws(RowError) -> [Row] {
        let records = CSVRecords.parse(contents)
        guard let header = records.first else { return [] }
        var columns: [Column] = []
        for name in header.fields {
            let name = name.trimmingCharacters(in: .whitespaces)
            guard let column = Column(header: name) else {
                throw RowError(
                    "column \(name.debugDescription) is not an event field (eventId, type, occurredAt, sessionId, "
                        + "tool, quantity, parentInvocationId, retryCount, parallel, inputTokens, outputTokens, "
                        + "reasoningTokens, model, provider, providerCost, action, properties.NAME)")
            }
            columns.append(column)
        }
        return records.dropFirst().compactMap { record -> Row? in
            if record.fields.count == 1, record.fields[0].isEmpty { return nil }  // a blank line
            guard record.fields.count == columns.count else {
                return Row(
                    line: record.line,
                    event: .failure(RowError("\(record.fields.count) fields where the header has \(columns.count)")))
            }
            var event: [String: JSONValue] = [:]
            var properties: [String: JSONValue] = [:]
            for (column, cell) in zip(columns, record.fields) where !cell.isEmpty {
                switch column {
                case .text(let name): event[name] = .string(cell)
                case .propertyText(let name): properties[name] = .string(cell)
                case .integer(let name), .propertyInteger(let name):
                    guard let number = Int64(cell) else {
                        return Row(line: record.line, event: .failure(RowError("\(name): not an integer: \(cell)")))
                    }
                    if case .integer = column {
                        event[name] = .integer(number)
                    } else {
                        properties[name] = .integer(number)
                    }
                case .flag(let name):
                    guard let flag = Bool(cell) else {
                        return Row(line: record.line, event: .failure(RowError("\(name): true or false, not \(cell)")))
                    }
                    event[name] = .bool(flag)
                }
            }
            if !properties.isEmpty { event["properties"] = .object(properties) }
            return Row(line: record.line, event: .success(.object(event)))
        }
    }
}

/// RFC 4180 records: fields separated by commas, records by line breaks (`\n` or `\r\n`), a field quoted with `"`
/// may hold commas, quotes (`""`) and line breaks.
enum CSVRecords {
    struct Record {
        var line: Int
        var fields: [String]
    }

    static func parse(_ text: String) -> [Record] {
        var records: [Record] = []
        var fields: [String] = []
        var field = ""
        var quoted = false
        var line = 1
        var recordLine = 1
        var iterator = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar?
        func next() -> Unicode.Scalar? {
            if let scalar = pending {
                pending = nil
                return scalar
            }
            return iterator.next()
        }
        func endRecord() {
            fields.append(field)
            records.append(Record(line: recordLine, fields: fields))
            fields = []
            field = ""
            recordLine = line
        }
        while let scalar = next() {
            if quoted {
                if scalar == "\"" {
                    if let following = next() {
                        if following == "\"" {
                            field.unicodeScalars.append("\"")
                        } else {
                            quoted = false
                            pending = following
                        }
                    } else {
                        quoted = false
                    }
                } else {
                    if scalar == "\n" { line += 1 }
                    field.unicodeScalars.append(scalar)
                }
                continue
            }
            switch scalar {
            case "\"" where field.isEmpty: quoted = true
            case ",":
                fields.append(field)
                field = ""
            case "\r":
                continue  // before \n: a CRLF line break
            case "\n":
                line += 1
                endRecord()
            default: field.unicodeScalars.append(scalar)
            }
        }
        if !field.isEmpty || !fields.isEmpty { endRecord() }
        return records
    }
}
