import ArgumentParser
import Foundation
import TollgateClient
import TollgateIngest
import TollgateJSON

/// `tollgate events upload FILE` and `tollgate events show ID`.
struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Usage events: upload a file of them (as an agent), show one with its provenance.",
        subcommands: [Upload.self, Show.self])

    struct Upload: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Send a JSON Lines or CSV file of events with events.ingest, in batches (an agent's token, or an "
                + "operator's with events:write and --agent).",
            discussion: """
                Safe to run again after an interruption, or on a file that grew: events are recorded once by
                their eventId, and those sent before come back as duplicates. Prints how many events were
                accepted, late, duplicates and rejected; rejected rows (the server's refusals and rows that are
                not events) are written, one JSON object per line with the row's line number and the reason, to
                --rejects (default FILE.rejected.jsonl). Exit status: 0 when no row was rejected, 3 when some
                were, 1 when the upload stopped (it says where; run it again to send the rest).

                CSV: a header row naming the columns eventId, type, occurredAt, sessionId, tool, quantity,
                parentInvocationId, retryCount, parallel, inputTokens, outputTokens, reasoningTokens, model,
                provider, providerCost, action, or properties.NAME; an empty cell is an absent field.
                See docs/EVENTS.md.
                """)
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The file: JSON Lines (.jsonl) or CSV (.csv).") var file: String
        @Option(name: .long, help: "jsonl or csv (default: from the file's name, else its first character).")
        var format: EventFile.Format?
        @Option(name: .long, help: "Events per batch (default the server's batchMax, at most 1000).") var batch: Int?
        @Option(name: .long, help: "Where to write the rejected rows (default FILE.rejected.jsonl).") var rejects:
            String?
        @Option(name: .long, help: "As an operator (scope events:write): the agent whose usage the file holds.")
        var agent: String?

        func run() async throws {
            guard let token = options.resolvedToken else {
                throw CLIError("no token: pass --token or set TOLLGATE_TOKEN")
            }
            guard let data = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read \(file)") }
            guard let contents = String(data: data, encoding: .utf8) else {
                throw CLIError("\(file) is not UTF-8 text")
            }
            let format = self.format ?? EventFile.format(path: file, contents: contents)
            let rows: [EventFile.Row]
            do { rows = try EventFile.rows(contents, format: format) } catch {
                throw CLIError("\(file): \(error.message)")
            }
            var uploader = try await Uploader(
                address: options.address, token: token, requestedBatch: batch, agentId: agent)
            var tally = UploadTally()
            var pending: [(line: Int, event: JSONValue)] = []
            let progress = Progress(name: (file as NSString).lastPathComponent, total: rows.count)
            var stopped: String?
            for row in rows {
                switch row.event {
                case .failure(let error): tally.unreadable(line: row.line, error)
                case .success(let event): pending.append((row.line, event))
                }
                if pending.count == uploader.batchMax || (row.line == rows.last?.line && !pending.isEmpty) {
                    do {
                        tally.fold(pending, results: try await uploader.send(pending.map(\.event)))
                    } catch {
                        stopped = "stopped at line \(pending[0].line): \(error)"
                        break
                    }
                    pending = []
                }
                progress.show(tally.count + pending.count)
            }
            progress.finish()
            await uploader.close()
            let rejectsPath = rejects ?? file + ".rejected.jsonl"
            if !tally.rejects.isEmpty {
                let lines = tally.rejects.map(JSONCodec.string).joined(separator: "\n") + "\n"
                guard FileManager.default.createFile(atPath: rejectsPath, contents: Data(lines.utf8)) else {
                    throw CLIError("cannot write the rejected rows to \(rejectsPath)")
                }
            }
            var summary = tally.json.objectValue ?? [:]
            summary["file"] = .string(file)
            summary["rows"] = .integer(Int64(rows.count))
            if !tally.rejects.isEmpty { summary["rejects"] = .string(rejectsPath) }
            if let stopped { summary["stopped"] = .string(stopped) }
            try Output.print(.object(summary), json: options.json, field: options.get)
            if let stopped {
                throw CLIError(
                    "\(stopped). The events before it are recorded; run the same command again to send the rest "
                        + "(those already recorded are answered as duplicates).")
            }
            if tally.rejected > 0 { throw ExitCode(3) }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One event as recorded: the event as sent, its status, source, gates and billing context.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The event's id (or a metered call's idempotency key).") var eventId: String
        func run() async throws {
            try await options.call("events.get", ["eventId": .string(eventId)])
        }
    }
}

/// One connection for a whole upload, made again when lost; a batch the server could not take now is sent again.
struct Uploader {
    let address: String
    let token: String
    /// For an operator's upload: the agent the events are of.
    let agentId: String?
    private(set) var batchMax: Int
    private var connection: TollgateConnection?

    init(address: String, token: String, requestedBatch: Int?, agentId: String? = nil) async throws {
        self.address = address
        self.token = token
        self.agentId = agentId
        batchMax = 1000
        let hello = try await connect()
        let serverMax = Int(hello["limits"]?["batchMax"]?.int64Value ?? 1000)
        if let requestedBatch, !(1...serverMax).contains(requestedBatch) {
            throw CLIError("--batch must be 1 to \(serverMax) (the server's batchMax)")
        }
        batchMax = min(requestedBatch ?? serverMax, serverMax, 1000)
    }

    @discardableResult
    private mutating func connect() async throws -> JSONValue {
        let connection: TollgateConnection
        do { connection = try await TollgateConnection.connect(address: address) } catch {
            throw CLIError("cannot connect to \(address): \(error)")
        }
        do {
            let hello = try await connection.call("auth.hello", ["token": .string(token)])
            self.connection = connection
            return hello
        } catch {
            await connection.close()
            throw error
        }
    }

    /// The results of one batch. A lost connection or a refusal the server marks retryable is tried again, up to
    /// five times, waiting longer each time; anything else stops the upload.
    mutating func send(_ events: [JSONValue]) async throws -> [JSONValue] {
        var wait = Duration.milliseconds(500)
        for attempt in 1...6 {
            do {
                if connection == nil || connection!.isClosed { try await connect() }
                var params: [String: JSONValue] = ["events": .array(events), "source": "upload"]
                params.set("agentId", agentId)
                let answer = try await connection!.call("events.ingest", .object(params))
                return answer["results"]?.arrayValue ?? []
            } catch let error as RPCError where !(error.data?["retryable"] == true) {
                throw error
            } catch {
                if attempt == 6 { throw error }
                try await Task.sleep(for: wait)
                wait *= 2
            }
        }
        return []
    }

    func close() async { await connection?.close() }
}

/// A progress line on standard error: redrawn in place on a terminal, a line per tenth otherwise (a log).
final class Progress {
    let name: String
    let total: Int
    private let terminal = isatty(STDERR_FILENO) == 1
    private var shownTenth = -1

    init(name: String, total: Int) {
        self.name = name
        self.total = total
    }

    func show(_ done: Int) {
        guard total > 0 else { return }
        let fraction = Double(min(done, total)) / Double(total)
        if terminal {
            let width = 30
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            FileHandle.standardError.write(
                Data("\r\(name) [\(bar)] \(Int(fraction * 100))% \(done)/\(total) rows".utf8))
        } else if Int(fraction * 10) > shownTenth {
            shownTenth = Int(fraction * 10)
            FileHandle.standardError.write(Data("\(name): \(done)/\(total) rows\n".utf8))
        }
    }

    func finish() {
        if terminal, total > 0 { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

extension EventFile.Format: ExpressibleByArgument {}
