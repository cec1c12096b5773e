import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import TollgateJSON

/// What came of one request to Stripe.
public enum StripeOutcome: Sendable, Hashable {
    /// A 2xx answer, its JSON body.
    case answered(JSONValue)
    /// Worth trying again later: no answer, a timeout, 409 (the same key in flight), 429 or a 5xx.
    case retry(String)
    /// Refused (any other 4xx): trying again would be refused again. Stripe's message says why.
    case rejected(String)
}

/// Sends one request to Stripe: the seam the outbox is tested through (against a stand-in server, the real HTTP
/// transport is used; nothing is mocked).
public protocol StripeTransport: Sendable {
    func send(_ request: StripeRequest) async -> StripeOutcome
}

/// Stripe's API over HTTPS (or the stand-in's HTTP), authenticated with the secret key as a bearer token. The key
/// goes in the header only: it is never logged, nor part of any error.
public struct StripeHTTPTransport: StripeTransport {
    public let apiBase: String
    let secretKey: String
    let timeout: TimeAmount

    public init(apiBase: String, secretKey: String, timeoutMs: Int = 30_000) {
        self.apiBase = apiBase.hasSuffix("/") ? String(apiBase.dropLast()) : apiBase
        self.secretKey = secretKey
        self.timeout = .milliseconds(Int64(timeoutMs))
    }

    public func send(_ request: StripeRequest) async -> StripeOutcome {
        var outgoing = HTTPClientRequest(url: apiBase + request.path)
        outgoing.method = .POST
        outgoing.headers.add(name: "Authorization", value: "Bearer \(secretKey)")
        outgoing.headers.add(name: "Idempotency-Key", value: request.idempotencyKey)
        outgoing.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        outgoing.headers.add(name: "User-Agent", value: "tollgate")
        outgoing.body = .bytes(ByteBuffer(string: StripeForm.encode(request.form.map { ($0.name, $0.value) })))
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            response = try await HTTPClient.shared.execute(outgoing, timeout: timeout)
            body = try await response.body.collect(upTo: 1 << 20)
        } catch {
            return .retry("no answer from Stripe (\(type(of: error)))")
        }
        let json = try? JSONCodec.parse(Array(body.readableBytesView))
        let status = Int(response.status.code)
        if (200..<300).contains(status) {
            guard let json else { return .retry("Stripe answered \(status) without JSON") }
            return .answered(json)
        }
        let message = Self.describe(status: status, json)
        return status == 409 || status == 429 || status >= 500 ? .retry(message) : .rejected(message)
    }

    /// Stripe's error, as `HTTP 402 card_error (code): message`.
    static func describe(status: Int, _ json: JSONValue?) -> String {
        guard let error = json?["error"] else { return "HTTP \(status)" }
        var text = "HTTP \(status)"
        if let type = error["type"]?.stringValue { text += " \(type)" }
        if let code = error["code"]?.stringValue { text += " (\(code))" }
        if let message = error["message"]?.stringValue { text += ": \(message.prefix(300))" }
        return text
    }
}
