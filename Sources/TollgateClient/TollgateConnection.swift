import NIOCore
import NIOPosix
import Synchronization
import TollgateCore
import TollgateJSON
import TollgateWire

/// One persistent connection to a Tollgate server.
///
/// Calls may be made concurrently from many tasks: each is written at once (pipelining) and matched to its
/// answer by id, whatever order answers come back in. Server notifications (alerts) and answers that match
/// no call (`id: null` errors) arrive on `notifications`.
public final class TollgateConnection: Sendable {
    private typealias Channel = NIOAsyncChannel<InboundFrame, ByteBuffer>

    private let outbound = OutboundQueue()
    private let pending = Mutex<Pending>(Pending())
    private let nextId = Atomic<Int64>(1)
    private let notificationSink: AsyncStream<JSONValue>.Continuation
    /// Messages the server sent that are not answers to a call: notifications and unmatched errors.
    public let notifications: AsyncStream<JSONValue>

    private struct Pending {
        var calls: [Int64: CheckedContinuation<JSONValue, any Error>] = [:]
        var closed: TollgateClientError?
    }

    /// Connects to `host:port`. `frameBytesMax` bounds the frames this client accepts from the server.
    public static func connect(host: String, port: Int, frameBytesMax: Int = 16 << 20) async throws
        -> TollgateConnection
    {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Outbound frames are length-prefixed by `call` itself, so that `sendRaw` can write bytes as
                    // they are.
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(FrameDecoder(frameBytesMax: frameBytesMax)))
                    return try Channel(
                        wrappingChannelSynchronously: channel,
                        configuration: .init(
                            inboundType: InboundFrame.self, outboundType: ByteBuffer.self))
                }
            }
        return TollgateConnection(channel: channel)
    }

    /// Connects to an address written `host:port`.
    public static func connect(address: String) async throws -> TollgateConnection {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
            throw TollgateClientError.badAddress(address)
        }
        return try await connect(host: String(address[..<colon]), port: port)
    }

    private init(channel: Channel) {
        let (notifications, sink) = AsyncStream.makeStream(of: JSONValue.self)
        self.notifications = notifications
        notificationSink = sink
        startIO(channel: channel)
    }

    private let io = Mutex<Task<Void, Never>?>(nil)

    private func startIO(channel: Channel) {
        let task = Task {
            do {
                try await channel.executeThenClose { inbound, outbound in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            while let frames = await self.outbound.next() {
                                try await outbound.write(contentsOf: frames)
                            }
                        }
                        for try await frame in inbound {
                            guard case .payload(let payload) = frame else { break }
                            self.deliver(payload)
                        }
                        // The server closed: stop the writer too.
                        self.outbound.finish()
                        group.cancelAll()
                    }
                }
            } catch {}
            self.finish(.connectionClosed)
        }
        io.withLock { $0 = task }
    }

    private func deliver(_ payload: ByteBuffer) {
        guard let message = try? JSONCodec.parse(payload.readableBytesView) else { return }
        guard case .array(let items) = message else {
            if !resume(message) { notificationSink.yield(message) }
            return
        }
        // A batch answer: entries matching calls resume them; the rest arrive together, as an array.
        let unmatched = items.filter { !resume($0) }
        if !unmatched.isEmpty { notificationSink.yield(.array(unmatched)) }
    }

    /// Resumes the call `message` answers; false when it answers none.
    private func resume(_ message: JSONValue) -> Bool {
        guard case .integer(let id)? = message["id"],
            let continuation = pending.withLock({ $0.calls.removeValue(forKey: id) })
        else { return false }
        if let error = message["error"] {
            continuation.resume(throwing: RPCError(error))
        } else {
            continuation.resume(returning: message["result"] ?? .null)
        }
        return true
    }

    private func finish(_ error: TollgateClientError) {
        let calls = pending.withLock { state -> [CheckedContinuation<JSONValue, any Error>] in
            if state.closed == nil { state.closed = error }
            defer { state.calls = [:] }
            return Array(state.calls.values)
        }
        for call in calls { call.resume(throwing: error) }
        outbound.finish()
        notificationSink.finish()
    }

    /// Calls `method` and waits for its answer. Throws `RPCError` when the server answers with an error.
    public func call(_ method: String, _ params: JSONValue = [:]) async throws -> JSONValue {
        let id = nextId.wrappingAdd(1, ordering: .relaxed).oldValue
        let payload = JSONCodec.serialize(Envelope.request(id: .integer(id), method: method, params: params))
        var frame = ByteBufferAllocator().buffer(capacity: FrameDecoder.headerBytes + payload.count)
        frame.writeInteger(UInt32(payload.count), endianness: .big)
        frame.writeBytes(payload)
        return try await withCheckedThrowingContinuation { continuation in
            let closed = pending.withLock { state -> TollgateClientError? in
                if let closed = state.closed { return closed }
                state.calls[id] = continuation
                return nil
            }
            if let closed {
                continuation.resume(throwing: closed)
                return
            }
            outbound.enqueue(frame)
        }
    }

    /// Whether the connection is closed (by either end): every call on it fails at once.
    public var isClosed: Bool { pending.withLock { $0.closed != nil } }

    /// Sends raw bytes as they are: for testing how a server treats malformed input.
    public func sendRaw(_ bytes: [UInt8]) {
        var buffer = ByteBufferAllocator().buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        outbound.enqueue(buffer)
    }

    /// Closes the connection; calls still waiting fail with `connectionClosed`.
    public func close() async {
        let task = io.withLock { $0 }
        finish(.connectionClosed)
        task?.cancel()
        await task?.value
    }

}

/// An error answer from the server.
public struct RPCError: Error, Sendable, CustomStringConvertible {
    public var code: Int
    public var message: String
    public var data: JSONValue?

    public init(code: Int, message: String, data: JSONValue? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    init(_ error: JSONValue) {
        code = Int(error["code"]?.int64Value ?? -32603)
        message = error["message"]?.stringValue ?? "error"
        data = error["data"]
    }

    /// The stable machine-readable reason (`BUDGET_EXCEEDED`, …), when the error has one.
    public var reason: String? { data?["reason"]?.stringValue }

    public var description: String {
        var text = "\(reason ?? "error \(code)"): \(message)"
        if let hint = data?["hint"]?.stringValue { text += " — \(hint)" }
        if let field = data?["field"]?.stringValue, let rule = data?["rule"]?.stringValue {
            text += " (\(field): \(rule))"
        }
        return text
    }
}

public enum TollgateClientError: Error, Sendable, Equatable, CustomStringConvertible {
    case connectionClosed
    case badAddress(String)
    /// An answer lacked a field a typed call reads, or held it in another form.
    case unexpectedAnswer(String)

    public var description: String {
        switch self {
        case .connectionClosed: "the connection to the server is closed"
        case .badAddress(let address): "\(address) is not host:port"
        case .unexpectedAnswer(let field): "the server's answer has no valid \(field)"
        }
    }
}
