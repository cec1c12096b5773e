import NIOCore
import TollgateCore
import TollgateJSON

/// One JSON-RPC request taken out of a frame. `id` is nil for a notification (no answer is sent).
public struct RPCRequest: Sendable {
    public var id: JSONValue?
    public var method: String
    public var params: JSONValue

    public init(id: JSONValue?, method: String, params: JSONValue) {
        self.id = id
        self.method = method
        self.params = params
    }
}

/// A frame's content: one request, a batch, or something that is not a request at all.
public enum ParsedFrame: Sendable {
    case single(Result<RPCRequest, RPCFailure>)
    case batch([Result<RPCRequest, RPCFailure>])
    /// The frame cannot be answered per request: unparseable JSON, an empty or oversized batch.
    case unanswerable(WireError)
}

/// A request that could not be taken, with the id to answer it under (null when none could be read).
public struct RPCFailure: Error, Sendable {
    public var id: JSONValue
    public var error: WireError
}

public enum Envelope {
    /// The longest string `id` a request may carry, in UTF-8 bytes; a longer one makes the request invalid.
    public static let idBytesMax = 256

    /// Reads a frame's payload. Never throws: every defect becomes an answer.
    public static func parse(_ payload: ByteBuffer, batchMax: Int) -> ParsedFrame {
        let document: JSONValue
        do { document = try JSONCodec.parse(payload.readableBytesView) } catch {
            return .unanswerable(.parseError(error.description))
        }
        switch document {
        case .array(let items):
            guard !items.isEmpty else { return .unanswerable(.invalidRequest("empty batch")) }
            guard items.count <= batchMax else {
                return .unanswerable(.batchTooLarge(count: items.count, batchMax: batchMax))
            }
            return .batch(items.map(request))
        default:
            return .single(request(document))
        }
    }

    static func request(_ value: JSONValue) -> Result<RPCRequest, RPCFailure> {
        guard case .object(let object) = value else {
            return .failure(RPCFailure(id: .null, error: .invalidRequest("not a request object")))
        }
        let id = object["id"]
        switch id {
        case .string(let text)? where text.utf8.count > idBytesMax:
            // Not echoed: an answer carrying it could be as large as the frame that brought it.
            return .failure(RPCFailure(id: .null, error: .invalidRequest("id longer than \(idBytesMax) bytes")))
        case nil, .string?, .integer?, .null?: break
        default:
            return .failure(RPCFailure(id: .null, error: .invalidRequest("id must be a string, an integer or null")))
        }
        guard object["jsonrpc"] == .string("2.0") else {
            return .failure(RPCFailure(id: id ?? .null, error: .invalidRequest("jsonrpc must be \"2.0\"")))
        }
        guard case .string(let method)? = object["method"], !method.isEmpty else {
            return .failure(RPCFailure(id: id ?? .null, error: .invalidRequest("method must be a non-empty string")))
        }
        let params = object["params"] ?? .object([:])
        guard case .object = params else {
            return .failure(RPCFailure(id: id ?? .null, error: .invalidParams(field: "params", expected: "an object")))
        }
        return .success(RPCRequest(id: id, method: method, params: params))
    }

    public static func success(id: JSONValue, result: JSONValue) -> JSONValue {
        ["jsonrpc": "2.0", "id": id, "result": result]
    }

    public static func failure(id: JSONValue, error: WireError) -> JSONValue {
        var body: [String: JSONValue] = ["code": .integer(Int64(error.code)), "message": .string(error.message)]
        if let data = error.data { body["data"] = data }
        return ["jsonrpc": "2.0", "id": id, "error": .object(body)]
    }

    public static func notification(method: String, params: JSONValue) -> JSONValue {
        ["jsonrpc": "2.0", "method": .string(method), "params": params]
    }

    public static func request(id: JSONValue, method: String, params: JSONValue) -> JSONValue {
        ["jsonrpc": "2.0", "id": id, "method": .string(method), "params": params]
    }

    /// Serialises an answer into a buffer for the frame encoder, never over `frameBytesMax`: an answer that
    /// would be is replaced by `ANSWER_TOO_LARGE` under its id; in a batch, the largest answers are replaced
    /// one by one until the batch fits (ids are at most `idBytesMax`, so a batch of errors always does).
    public static func answer(
        _ message: JSONValue, frameBytesMax: Int,
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) -> ByteBuffer {
        let buffer = buffer(message, allocator: allocator)
        guard buffer.readableBytes > frameBytesMax else { return buffer }
        let tooLarge = WireError.answerTooLarge(frameBytesMax: frameBytesMax)
        switch message {
        case .array(var answers):
            var sizes = answers.map { JSONCodec.serialize($0).count }
            var total = buffer.readableBytes
            while total > frameBytesMax, let largest = sizes.indices.max(by: { sizes[$0] < sizes[$1] }) {
                let replacement = failure(id: answers[largest]["id"] ?? .null, error: tooLarge)
                let size = JSONCodec.serialize(replacement).count
                guard size < sizes[largest] else { break }
                total -= sizes[largest] - size
                answers[largest] = replacement
                sizes[largest] = size
            }
            return self.buffer(.array(answers), allocator: allocator)
        default:
            return self.buffer(failure(id: message["id"] ?? .null, error: tooLarge), allocator: allocator)
        }
    }

    /// Serialises a message into a buffer ready for the frame encoder.
    public static func buffer(_ message: JSONValue, allocator: ByteBufferAllocator = ByteBufferAllocator())
        -> ByteBuffer
    {
        let bytes = JSONCodec.serialize(message)
        var buffer = allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        return buffer
    }
}
