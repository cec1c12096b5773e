import NIOCore
import NIOPosix
import TollgateWire

/// A load generator that costs as little as it can, so that the benchmark measures the server.
///
/// Each connection is driven by a channel handler on its event loop: an answer arrives, its latency is
/// noted, and the next call is written in the same event-loop tick, without waking any task. Requests are
/// written from a string template (framed by the wire module's `FrameEncoder`), and of each answer only the
/// id and whether it is a result are read. Each connection keeps `depth` calls in flight.
enum LeanAgent {
    struct Plan: Sendable {
        var token: String
        var connection: Int
        var depth: Int
        var measureFrom: NIODeadline
        var stopAt: NIODeadline
        /// Keys spread over the whole key space, as UUIDs would be, instead of one run of keys per connection.
        var randomKeys: Bool
    }

    /// Connects and runs one connection until `plan.stopAt`; returns the latencies (µs) of calls sent after
    /// `plan.measureFrom`, once every call in flight has been answered.
    static func run(host: String, port: Int, plan: Plan) async throws -> [Int64] {
        let done = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: [Int64].self)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(FrameDecoder(frameBytesMax: 1 << 20)))
                        try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(FrameEncoder()))
                        try channel.pipeline.syncOperations.addHandler(Driver(plan: plan, done: done))
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            done.fail(error)
            throw error
        }
        let latencies = try await done.futureResult.get()
        try? await channel.close()
        return latencies
    }

    /// The id of an answer written canonically (`{"id":N,…`), and whether it carries a result.
    static func answer(_ payload: ByteBuffer) -> (id: Int, ok: Bool)? {
        let bytes = payload.readableBytesView
        guard bytes.starts(with: idPrefix) else { return nil }
        var id = 0
        var index = bytes.startIndex + idPrefix.count
        while index < bytes.endIndex, (48...57).contains(bytes[index]) {
            id = id * 10 + Int(bytes[index] - 48)
            index += 1
        }
        return (id, bytes[index...].starts(with: resultPrefix))
    }

    static let idPrefix = Array(#"{"id":"#.utf8)
    static let resultPrefix = Array(#","jsonrpc":"2.0","result""#.utf8)

    /// One connection's state machine: `auth.hello`, then `depth` calls in flight until `stopAt`.
    final class Driver: ChannelInboundHandler {
        typealias InboundIn = InboundFrame
        typealias OutboundOut = ByteBuffer

        private let plan: Plan
        private let done: EventLoopPromise<[Int64]>
        private var authenticated = false
        private var sentAt: [NIODeadline] = [.now()]
        private var latencies: [Int64] = []
        private var outstanding = 0
        private var finished = false
        /// xorshift64 state for random keys: cheap, and distinct per connection.
        private var random: UInt64

        init(plan: Plan, done: EventLoopPromise<[Int64]>) {
            self.plan = plan
            self.done = done
            random = 0x9E37_79B9_7F4A_7C15 &* UInt64(plan.connection + 1)
            latencies.reserveCapacity(1 << 16)
        }

        func channelActive(context: ChannelHandlerContext) {
            context.writeAndFlush(
                wrapOutboundOut(
                    ByteBuffer(
                        string:
                            #"{"jsonrpc":"2.0","id":0,"method":"auth.hello","params":{"token":"\#(plan.token)"}}"#)),
                promise: nil)
        }

        private func send(context: ChannelHandlerContext) {
            let id = sentAt.count
            sentAt.append(.now())
            outstanding += 1
            context.write(
                wrapOutboundOut(
                    ByteBuffer(
                        string:
                            #"{"jsonrpc":"2.0","id":\#(id),"method":"meter.verify","params":{"tool":"search","#
                            + #""idempotencyKey":"\#(key(id))"}}"#
                    )),
                promise: nil)
        }

        private func key(_ id: Int) -> String {
            guard plan.randomKeys else { return "l\(plan.connection)-\(id)" }
            random ^= random << 13
            random ^= random >> 7
            random ^= random << 17
            return String(random, radix: 16) + "-\(plan.connection)"
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .payload(let payload) = unwrapInboundIn(data), let (id, ok) = answer(payload), ok else {
                return fail(context: context, "the server refused a call or sent something unreadable")
            }
            if !authenticated {
                authenticated = true
                for _ in 0..<plan.depth { send(context: context) }
                return
            }
            outstanding -= 1
            let now = NIODeadline.now()
            if sentAt[id] >= plan.measureFrom {
                latencies.append((now - sentAt[id]).nanoseconds / 1000)
            }
            if now < plan.stopAt {
                send(context: context)
            } else if outstanding == 0, !finished {
                finished = true
                done.succeed(latencies)
            }
        }

        func channelReadComplete(context: ChannelHandlerContext) { context.flush() }

        func channelInactive(context: ChannelHandlerContext) { fail(context: context, "the connection closed") }

        func errorCaught(context: ChannelHandlerContext, error: any Error) { fail(context: context, "\(error)") }

        private func fail(context: ChannelHandlerContext, _ reason: String) {
            guard !finished else { return }
            finished = true
            done.fail(BenchError(reason: reason))
            context.close(promise: nil)
        }
    }

    struct BenchError: Error, CustomStringConvertible {
        var reason: String
        var description: String { reason }
    }
}
