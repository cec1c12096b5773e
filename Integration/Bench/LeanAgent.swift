import Foundation
import NIOCore
import NIOPosix
import TollgateWire

/// A load generator that costs as little as it can, so that the benchmark measures the server: requests are
/// written from a byte template, and of each answer only the id and whether it is a result are read. Each
/// connection keeps `depth` calls in flight, sending the next call as each answer arrives.
enum LeanAgent {
    typealias Channel = NIOAsyncChannel<InboundFrame, ByteBuffer>

    static func connect(host: String, port: Int) async throws -> Channel {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(frameBytesMax: 1 << 20)))
                    return try Channel(wrappingChannelSynchronously: channel)
                }
            }
    }

    static func frame(_ json: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(json.utf8.count))
        buffer.writeString(json)
        return buffer
    }

    /// The id of an answer written canonically (`{"id":N,…`), and whether it carries a result.
    static func answer(_ payload: ByteBuffer) -> (id: Int, ok: Bool)? {
        let bytes = payload.readableBytesView
        guard bytes.starts(with: Array(#"{"id":"#.utf8)) else { return nil }
        var id = 0
        var index = bytes.startIndex + 6
        while index < bytes.endIndex, (48...57).contains(bytes[index]) {
            id = id * 10 + Int(bytes[index] - 48)
            index += 1
        }
        let rest = bytes[index...]
        return (id, rest.starts(with: Array(#","jsonrpc":"2.0","result""#.utf8)))
    }

    /// Runs one connection until `stopAt`; returns the latencies (µs) of calls sent after `measureFrom`.
    static func run(_ channel: Channel, token: String, connection: Int, depth: Int,
                    measureFrom: ContinuousClock.Instant, stopAt: ContinuousClock.Instant) async throws -> [Int64] {
        try await channel.executeThenClose { inbound, outbound in
            var frames = inbound.makeAsyncIterator()
            try await outbound.write(frame(#"{"jsonrpc":"2.0","id":0,"method":"auth.hello","params":{"token":"\#(token)"}}"#))
            guard case .payload(let hello)? = try await frames.next(), answer(hello)?.ok == true else {
                throw CancellationError()
            }
            var sentAt: [ContinuousClock.Instant] = [.now]
            var latencies: [Int64] = []
            var outstanding = 0
            func send() async throws {
                let id = sentAt.count
                sentAt.append(.now)
                outstanding += 1
                try await outbound.write(frame(
                    #"{"jsonrpc":"2.0","id":\#(id),"method":"meter.verify","params":{"tool":"search","idempotencyKey":"l\#(connection)-\#(id)"}}"#))
            }
            for _ in 0..<depth { try await send() }
            while outstanding > 0, case .payload(let payload)? = try await frames.next() {
                guard let (id, ok) = answer(payload), ok else { throw CancellationError() }
                outstanding -= 1
                let now = ContinuousClock.now
                if sentAt[id] >= measureFrom {
                    let elapsed = now - sentAt[id]
                    latencies.append(elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000)
                }
                if now < stopAt { try await send() }
            }
            return latencies
        }
    }
}
