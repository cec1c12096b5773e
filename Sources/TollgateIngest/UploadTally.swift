import TollgateJSON

/// What an upload of an event file came to: how many events were accepted, late, duplicates or rejected, and each
/// rejected row with its line and reason — those refused by the server and those that could not be read.
/// Folded batch by batch from `events.ingest` results; no I/O.
public struct UploadTally: Sendable {
    public private(set) var accepted = 0
    public private(set) var late = 0
    public private(set) var duplicate = 0
    public private(set) var rejected = 0
    /// One JSON object per rejected row: `{line, eventId?, reason, message, field?, event?}`.
    public private(set) var rejects: [JSONValue] = []

    public init() {}

    /// Rows handled so far.
    public var count: Int { accepted + late + duplicate + rejected }

    /// A row that is not an event (bad JSON, a CSV cell of the wrong type): never sent.
    public mutating func unreadable(line: Int, _ error: EventFile.RowError) {
        rejected += 1
        rejects.append(["line": .integer(Int64(line)), "reason": "UNREADABLE", "message": .string(error.message)])
    }

    /// The server's results for one batch, in the order its events were sent.
    public mutating func fold(_ batch: [(line: Int, event: JSONValue)], results: [JSONValue]) {
        for (index, row) in batch.enumerated() {
            let result = index < results.count ? results[index] : .null
            switch result["status"]?.stringValue {
            case "accepted": accepted += 1
            case "late": late += 1
            case "duplicate": duplicate += 1
            default:
                rejected += 1
                var reject: [String: JSONValue] = [
                    "line": .integer(Int64(row.line)), "reason": result["reason"] ?? "NO_RESULT",
                    "message": result["message"] ?? "the server gave no result for this event", "event": row.event,
                ]
                if let id = row.event["eventId"], id != .null { reject["eventId"] = id }
                if let field = result["field"] { reject["field"] = field }
                rejects.append(.object(reject))
            }
        }
    }

    public var json: JSONValue {
        [
            "accepted": .integer(Int64(accepted)), "late": .integer(Int64(late)),
            "duplicate": .integer(Int64(duplicate)), "rejected": .integer(Int64(rejected)),
        ]
    }
}
