import TollgateJSON

/// One MCP message as the proxy sees it: the bytes of its line, relayed unchanged, and what it is. MCP messages
/// are JSON-RPC 2.0 (requests, notifications, responses); on stdio each is one line of UTF-8 JSON.
public struct MCPMessage: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// A request: it has a method and an id, and expects a response with that id.
        case request(id: JSONValue, method: String)
        /// A notification: a method, no id, no response.
        case notification(method: String)
        /// A response (a result or an error) to the request with `id`.
        case response(id: JSONValue, isError: Bool)
        /// Not a JSON-RPC object the proxy understands (a batch, or not JSON at all): relayed as it is.
        case other
    }

    /// The line exactly as received, without its newline.
    public let bytes: [UInt8]
    public let kind: Kind
    /// The parsed message, when it parsed.
    public let json: JSONValue?

    public init(bytes: [UInt8]) {
        self.bytes = bytes
        let json = try? JSONCodec.parse(bytes)
        self.json = json
        guard let json, case .object(let object) = json else {
            kind = .other
            return
        }
        let method = object["method"]?.stringValue
        switch (object["id"], method) {
        case (let id?, let method?) where id != .null: kind = .request(id: id, method: method)
        case (nil, let method?): kind = .notification(method: method)
        case (let id?, nil): kind = .response(id: id, isError: object["error"] != nil)
        default: kind = .other
        }
    }

    public var params: JSONValue? { json?["params"] }
    public var result: JSONValue? { json?["result"] }
}
