import NIOCore
import NIOPosix
import Synchronization

/// A TCP relay on a free loopback port that forwards every connection to `target`, and that a test can cut
/// (every relayed connection closed, new ones refused) and restore: a database or a peer that goes away and
/// comes back, on real sockets.
public final class TCPRelay: Sendable {
    private let target: (host: String, port: Int)
    private let server: any Channel
    private let state = Mutex(State())

    private struct State {
        var cut = false
        var open: [ObjectIdentifier: any Channel] = [:]
    }

    /// The port to connect to instead of the target's.
    public var port: Int { server.localAddress?.port ?? 0 }

    public init(to host: String, port: Int) async throws {
        target = (host, port)
        let box = RelayBox()
        server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { inbound in
                guard let relay = box.relay.withLock({ $0 }), relay.admit(inbound) else { return inbound.close() }
                return ClientBootstrap(group: inbound.eventLoop)
                    .connect(host: host, port: port)
                    .flatMap { outbound in
                        relay.track(outbound)
                        // The inbound side starts reading once this initializer is done, with its splice in place.
                        return inbound.pipeline.addHandler(Splice(peer: outbound)).flatMap {
                            outbound.pipeline.addHandler(Splice(peer: inbound))
                        }
                    }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        box.relay.withLock { $0 = self }
    }

    /// Closes every relayed connection and refuses new ones until `restore()`.
    public func cut() {
        let channels = state.withLock { state in
            state.cut = true
            defer { state.open = [:] }
            return Array(state.open.values)
        }
        for channel in channels { channel.close(promise: nil) }
    }

    /// Relays new connections again.
    public func restore() { state.withLock { $0.cut = false } }

    public func close() async throws { try await server.close() }

    private func admit(_ channel: any Channel) -> Bool {
        state.withLock { state in
            guard !state.cut else { return false }
            state.open[ObjectIdentifier(channel)] = channel
            return true
        }
    }

    private func track(_ channel: any Channel) {
        state.withLock { $0.open[ObjectIdentifier(channel)] = channel }
    }
}

/// Lets the channel initializer reach the relay that is built around it.
private final class RelayBox: Sendable {
    let relay = Mutex<TCPRelay?>(nil)
}

/// Writes what one side reads to the other, and closes the other when one side closes.
private final class Splice: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let peer: any Channel

    init(peer: any Channel) { self.peer = peer }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        peer.writeAndFlush(unwrapInboundIn(data), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        peer.close(promise: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
