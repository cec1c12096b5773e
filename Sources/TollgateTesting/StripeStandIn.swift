import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceLifecycle
import Synchronization
import TollgateJSON
import TollgateStripe

/// A local stand-in for the part of Stripe's API the hand-off uses — customers, invoices, invoice items,
/// finalize, void — for tests: Stripe cannot be reached from these machines. It checks each request as Stripe
/// documents it (a bearer secret key, form-encoded fields, lower-case currencies, integer amounts, invoice items
/// only on a draft invoice of the same customer and currency, finalize only a draft, void only an open invoice)
/// and answers as Stripe does: the object as JSON, or `{"error":{"type","message"}}` with Stripe's status codes.
/// An `Idempotency-Key` is required (Stripe's is optional; the hand-off must always send one); a key seen before
/// is answered with the first answer, and with another request is `400 idempotency_error`.
///
/// Faults can be scheduled on a path: an error answered without doing anything, or an answer "lost" — the
/// request is carried out, and the answer held back longer than the client waits.
public final class StripeStandIn: Sendable {
    public static let secretKey = "sk_test_tollgate_stand_in"

    public enum Fault: Sendable {
        /// Answers this status (500, 429, 402 …) with a Stripe error and does nothing.
        case status(Int)
        /// Does what was asked, keeps the answer for the key, then holds it back `seconds` before answering.
        case lostAnswer(seconds: Double)
    }

    /// One request as it arrived.
    public struct Received: Sendable {
        public var path: String
        public var idempotencyKey: String?
        public var fields: [String: String]
        public var status: Int
    }

    struct Invoice {
        var json: [String: JSONValue]
        var total: Int64 { json["total"]?.int64Value ?? 0 }
    }

    struct State {
        var customers: [String: JSONValue] = [:]
        var invoices: [String: Invoice] = [:]
        var items: [String: JSONValue] = [:]
        /// Answers by idempotency key, with the request they answered.
        var answers: [String: (request: String, status: Int, body: String)] = [:]
        var faults: [(path: String, fault: Fault)] = []
        var received: [Received] = []
        var counter = 0
    }

    private let state = Mutex(State())
    private let task: Task<Void, Never>
    private let group: ServiceGroup
    /// `http://127.0.0.1:<port>`: the `stripe.apiBase` of a server under test.
    public let url: String

    private init(url: String, task: Task<Void, Never>, group: ServiceGroup) {
        self.url = url
        self.task = task
        self.group = group
    }

    /// Starts the stand-in on a free loopback port.
    public static func start() async throws -> StripeStandIn {
        let standIn = Mutex<StripeStandIn?>(nil)
        let router = Router()
        let handle: @Sendable (Request, String) async throws -> Response = { request, path in
            guard let current = standIn.withLock({ $0 }) else { return Response(status: .serviceUnavailable) }
            return try await current.handle(request, path: path)
        }
        router.post("/v1/customers") { request, _ in try await handle(request, "/v1/customers") }
        router.post("/v1/invoices") { request, _ in try await handle(request, "/v1/invoices") }
        router.post("/v1/invoiceitems") { request, _ in try await handle(request, "/v1/invoiceitems") }
        router.post("/v1/invoices/:id/finalize") { request, context in
            try await handle(request, "/v1/invoices/\(context.parameters.get("id") ?? "")/finalize")
        }
        router.post("/v1/invoices/:id/void") { request, context in
            try await handle(request, "/v1/invoices/\(context.parameters.get("id") ?? "")/void")
        }
        let port = AsyncStream<Int>.makeStream()
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: nil),
            onServerRunning: { channel in
                port.continuation.yield(channel.localAddress?.port ?? 0)
                port.continuation.finish()
            })
        let group = ServiceGroup(configuration: .init(services: [app], logger: app.logger))
        let task = Task<Void, Never> { do { try await group.run() } catch {} }
        var bound = 0
        for await value in port.stream {
            bound = value
            break
        }
        guard bound > 0 else { throw CancellationError() }
        let started = StripeStandIn(url: "http://127.0.0.1:\(bound)", task: task, group: group)
        standIn.withLock { $0 = started }
        return started
    }

    public func stop() async {
        await group.triggerGracefulShutdown()
        _ = await task.value
    }

    /// The next request to a path starting with `path` meets `fault` (faults are used in the order scheduled).
    public func schedule(_ fault: Fault, on path: String) {
        state.withLock { $0.faults.append((path, fault)) }
    }

    /// Every request so far, in the order they arrived.
    public var received: [Received] { state.withLock { $0.received } }

    /// The invoices made, by id, as Stripe would show them now.
    public var invoices: [String: JSONValue] { state.withLock { $0.invoices.mapValues { .object($0.json) } } }

    public var customers: [String: JSONValue] { state.withLock { $0.customers } }

    // MARK: handling

    private func handle(_ request: Request, path: String) async throws -> Response {
        let body = String(buffer: try await request.body.collect(upTo: 1 << 20))
        let key = request.headers[HTTPField.Name("Idempotency-Key")!]
        let pairs = StripeForm.decode(body)
        var fields: [String: String] = [:]
        for (name, value) in pairs ?? [] { fields[name] = value }
        let (status, json, delay) = state.withLock { state -> (Int, String, Double) in
            let (status, json, delay) = answer(
                &state, path: path, key: key, body: body, fields: pairs == nil ? nil : fields,
                authorization: request.headers[.authorization],
                contentType: request.headers[.contentType])
            state.received.append(Received(path: path, idempotencyKey: key, fields: fields, status: status))
            return (status, json, delay)
        }
        if delay > 0 { try? await Task.sleep(for: .milliseconds(Int(delay * 1000))) }
        return Response(
            status: HTTPResponse.Status(code: status), headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: json)))
    }

    private func answer(
        _ state: inout State, path: String, key: String?, body: String, fields: [String: String]?,
        authorization: String?, contentType: String?
    ) -> (Int, String, Double) {
        guard authorization == "Bearer \(Self.secretKey)" else {
            return (401, error("invalid_request_error", "Invalid API Key provided."), 0)
        }
        guard contentType?.hasPrefix("application/x-www-form-urlencoded") == true, let fields else {
            return (400, error("invalid_request_error", "Requests must be form-encoded."), 0)
        }
        guard let key, !key.isEmpty else {
            return (400, error("invalid_request_error", "The stand-in requires an Idempotency-Key on every POST."), 0)
        }
        let fingerprint = path + "?" + body
        if let stored = state.answers[key] {
            guard stored.request == fingerprint else {
                return (
                    400,
                    error(
                        "idempotency_error",
                        "Keys for idempotent requests can only be used with the same parameters they were first used "
                            + "with."), 0
                )
            }
            return (stored.status, stored.body, 0)
        }
        var fault: Fault?
        if let index = state.faults.firstIndex(where: { path.hasPrefix($0.path) }) {
            fault = state.faults.remove(at: index).fault
        }
        if case .status(let status)? = fault {
            return (
                status,
                error(
                    status == 429 ? "rate_limit_error" : status >= 500 ? "api_error" : "card_error",
                    "Scheduled fault."), 0
            )
        }
        let (status, json) = perform(&state, path: path, fields: fields)
        // Stripe keeps the first answer to a key, whatever it was.
        state.answers[key] = (fingerprint, status, json)
        if case .lostAnswer(let seconds)? = fault { return (status, json, seconds) }
        return (status, json, 0)
    }

    private func perform(_ state: inout State, path: String, fields: [String: String]) -> (Int, String) {
        func id(_ prefix: String) -> String {
            state.counter += 1
            return prefix + String(format: "%014d", state.counter)
        }
        func metadata() -> JSONValue {
            var object: [String: JSONValue] = [:]
            for (name, value) in fields where name.hasPrefix("metadata[") && name.hasSuffix("]") {
                object[String(name.dropFirst("metadata[".count).dropLast())] = .string(value)
            }
            return .object(object)
        }
        func missing(_ name: String) -> (Int, String) {
            (400, error("invalid_request_error", "Missing required param: \(name).", param: name))
        }
        func invalid(_ name: String, _ message: String) -> (Int, String) {
            (400, error("invalid_request_error", message, param: name))
        }
        let parts = path.split(separator: "/").map(String.init)
        switch (parts.count, parts.last) {
        case (2, "customers"):
            let customer: JSONValue = [
                "id": .string(id("cus_")), "object": "customer", "name": fields["name"].map(JSONValue.string) ?? .null,
                "metadata": metadata(),
            ]
            state.customers[customer["id"]!.stringValue!] = customer
            return (200, JSONCodec.string(customer))
        case (2, "invoices"):
            guard let customer = fields["customer"] else { return missing("customer") }
            guard state.customers[customer] != nil else {
                return (
                    404, error("invalid_request_error", "No such customer: '\(customer)'", code: "resource_missing")
                )
            }
            let currency = fields["currency"] ?? "usd"
            guard currency.count == 3, currency == currency.lowercased() else {
                return invalid("currency", "Invalid currency: \(currency). Stripe currencies are lower-case ISO codes.")
            }
            guard ["charge_automatically", "send_invoice", nil].contains(fields["collection_method"]) else {
                return invalid("collection_method", "Invalid collection_method.")
            }
            if fields["collection_method"] == "send_invoice" {
                guard let days = fields["days_until_due"], Int(days) != nil else { return missing("days_until_due") }
            }
            guard ["exclude", "include", nil].contains(fields["pending_invoice_items_behavior"]) else {
                return invalid("pending_invoice_items_behavior", "Invalid pending_invoice_items_behavior.")
            }
            guard ["true", "false", nil].contains(fields["auto_advance"]) else {
                return invalid("auto_advance", "Invalid boolean: \(fields["auto_advance"] ?? "")")
            }
            let invoice: [String: JSONValue] = [
                "id": .string(id("in_")), "object": "invoice", "customer": .string(customer),
                "currency": .string(currency), "status": "draft", "total": 0, "amount_due": 0,
                "collection_method": .string(fields["collection_method"] ?? "charge_automatically"),
                "description": fields["description"].map(JSONValue.string) ?? .null, "metadata": metadata(),
                "lines": ["object": "list", "data": []],
            ]
            state.invoices[invoice["id"]!.stringValue!] = Invoice(json: invoice)
            return (200, JSONCodec.string(.object(invoice)))
        case (2, "invoiceitems"):
            guard let customer = fields["customer"] else { return missing("customer") }
            guard let amountText = fields["amount"] else { return missing("amount") }
            guard let amount = Int64(amountText) else {
                return invalid("amount", "Invalid integer: \(amountText)")
            }
            guard let currency = fields["currency"] else { return missing("currency") }
            guard let invoiceId = fields["invoice"], var invoice = state.invoices[invoiceId] else {
                return (404, error("invalid_request_error", "No such invoice.", code: "resource_missing"))
            }
            guard invoice.json["customer"]?.stringValue == customer else {
                return invalid("invoice", "The invoice belongs to another customer.")
            }
            guard invoice.json["status"] == "draft" else {
                return invalid("invoice", "You can only add invoice items to draft invoices.")
            }
            guard invoice.json["currency"]?.stringValue == currency else {
                return invalid("currency", "The currency must match the invoice's.")
            }
            let item: JSONValue = [
                "id": .string(id("ii_")), "object": "invoiceitem", "amount": .integer(amount),
                "currency": .string(currency), "customer": .string(customer), "invoice": .string(invoiceId),
                "description": fields["description"].map(JSONValue.string) ?? .null, "metadata": metadata(),
            ]
            state.items[item["id"]!.stringValue!] = item
            invoice.json["total"] = .integer(invoice.total + amount)
            invoice.json["amount_due"] = .integer(max(0, invoice.total))
            var lines = invoice.json["lines"]?["data"]?.arrayValue ?? []
            lines.append(item)
            invoice.json["lines"] = ["object": "list", "data": .array(lines)]
            state.invoices[invoiceId] = invoice
            return (200, JSONCodec.string(item))
        case (4, "finalize"):
            guard var invoice = state.invoices[parts[2]] else {
                return (404, error("invalid_request_error", "No such invoice: '\(parts[2])'", code: "resource_missing"))
            }
            guard invoice.json["status"] == "draft" else {
                return (
                    400,
                    error("invalid_request_error", "This invoice is already finalized.", code: "invoice_not_editable")
                )
            }
            // Stripe marks an invoice with nothing due paid as it finalizes it.
            invoice.json["status"] = invoice.total <= 0 ? "paid" : "open"
            state.invoices[parts[2]] = invoice
            return (200, JSONCodec.string(.object(invoice.json)))
        case (4, "void"):
            guard var invoice = state.invoices[parts[2]] else {
                return (404, error("invalid_request_error", "No such invoice: '\(parts[2])'", code: "resource_missing"))
            }
            guard invoice.json["status"] == "open" else {
                return (
                    400,
                    error(
                        "invalid_request_error", "You can only void invoices that are open or uncollectible.",
                        code: "invoice_not_open")
                )
            }
            invoice.json["status"] = "void"
            state.invoices[parts[2]] = invoice
            return (200, JSONCodec.string(.object(invoice.json)))
        default:
            return (404, error("invalid_request_error", "Unrecognized request URL (POST: \(path))."))
        }
    }

    private func error(_ type: String, _ message: String, param: String? = nil, code: String? = nil) -> String {
        var fields: [String: JSONValue] = ["type": .string(type), "message": .string(message)]
        if let param { fields["param"] = .string(param) }
        if let code { fields["code"] = .string(code) }
        return JSONCodec.string(["error": .object(fields)])
    }
}
