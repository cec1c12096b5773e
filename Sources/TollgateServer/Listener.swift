import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import TollgateCore
import TollgateRuntime
import TollgateWire

/// The TCP side of the server: accepts connections and runs each one until it closes.
///
/// Channel handlers do framing only; everything else happens behind `NIOAsyncChannel`. Connections run
/// in a discarding task group, each in a handler that cannot throw, so one failing connection never
/// affects another. On graceful shutdown the listener stops accepting, every connection stops reading,
/// answers what it has in flight and closes.
public final class Listener: Service, Sendable {
    typealias Connection = NIOAsyncChannel<InboundFrame, ByteBuffer>

    let configuration: ServerConfiguration
    let router: Router
    let supervisor: Supervisor
    let logger: Logger
    let version: String
    private let bound = Mutex<BoundState>(BoundState())
    private let open = Mutex<[ObjectIdentifier: any Channel]>([:])
    /// Connections accepted but not yet taken by the accept loop. NIO may accept a connection just as the
    /// listener closes and never hand it to the loop; such a connection must still be finished, or NIO
    /// traps ("Deinited NIOAsyncWriter without calling finish()", swift-nio#2637).
    private let unclaimed = Mutex<[ObjectIdentifier: (connection: Connection, state: ConnectionState)]>([:])
    private let connectionCount = Atomic<Int>(0)
    private let authThrottle: AuthThrottle

    struct BoundState {
        var address: SocketAddress?
        var failure: (any Error)?
        var waiters: [CheckedContinuation<SocketAddress, any Error>] = []
    }

    init(configuration: ServerConfiguration, router: Router, supervisor: Supervisor, version: String, logger: Logger) {
        self.configuration = configuration
        self.router = router
        self.supervisor = supervisor
        self.version = version
        self.logger = logger
        self.authThrottle = AuthThrottle(configuration.listener)
    }

    /// The address the listener is bound to, once it is (with the real port when configured with port 0).
    public func boundAddress() async throws -> SocketAddress {
        try await withCheckedThrowingContinuation { continuation in
            let ready = bound.withLock { state -> Result<SocketAddress, any Error>? in
                if let address = state.address { return .success(address) }
                if let failure = state.failure { return .failure(failure) }
                state.waiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }

    private func publish(_ result: Result<SocketAddress, any Error>) {
        let waiters = bound.withLock { state in
            switch result {
            case .success(let address): state.address = address
            case .failure(let error): state.failure = error
            }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(with: result) }
    }

    public func run() async throws {
        let limits = configuration.listener
        let (host, port) = try configuration.listenAddress()
        let server: NIOAsyncChannel<Connection, Never>
        do {
            server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.backlog, value: Int32(clamping: limits.backlog))
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .bind(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let state = ConnectionState(
                            defaultSessionId: Identifiers.make(.session),
                            remoteAddress: channel.remoteAddress?.ipAddress ?? "")
                        try channel.pipeline.syncOperations.addHandler(
                            IdleCloser(
                                unauthenticatedIdle: .milliseconds(Int64(limits.unauthenticatedIdleMs)),
                                authenticatedIdle: limits.idleMs > 0 ? .milliseconds(Int64(limits.idleMs)) : nil,
                                isAuthenticated: { state.currentPrincipal != nil }))
                        try channel.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(FrameDecoder(frameBytesMax: limits.frameBytesMax)))
                        try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(FrameEncoder()))
                        let connection = try Connection(
                            wrappingChannelSynchronously: channel,
                            configuration: .init(
                                backPressureStrategy: .init(lowWatermark: 4, highWatermark: 64),
                                isOutboundHalfClosureEnabled: false,
                                inboundType: InboundFrame.self, outboundType: ByteBuffer.self))
                        self.unclaimed.withLock { $0[ObjectIdentifier(channel)] = (connection, state) }
                        return connection
                    }
                }
        } catch {
            publish(.failure(error))
            throw error
        }
        let address = server.channel.localAddress!
        publish(.success(address))
        logger.info("listening", metadata: ["address": "\(address)"])
        let node = "\(host):\(address.port ?? port)"

        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { inbound in
                    for try await connection in inbound {
                        let key = ObjectIdentifier(connection.channel)
                        let claimed = self.unclaimed.withLock { $0.removeValue(forKey: key) }
                        let state = claimed?.state ?? ConnectionState(defaultSessionId: Identifiers.make(.session))
                        group.addTask { await self.serve(connection, state: state, node: node) }
                    }
                }
                // The listener is closed, so no connection can be accepted any more: finish the stragglers.
                try? await server.channel.closeFuture.get()
                for straggler in self.unclaimed.withLock({ state in
                    defer { state = [:] }
                    return Array(state.values)
                }) {
                    try? await straggler.connection.executeThenClose { _, _ in }
                }
            }
        } onGracefulShutdown: {
            self.logger.info("draining: no new connections; answering what is in flight")
            server.channel.close(promise: nil)
            self.stopReadingAll()
        }
    }

    /// Stops every open connection from reading further requests; each then answers what it has and
    /// closes. Connections still open after `drainTimeoutMs` are closed outright.
    private func stopReadingAll() {
        let channels = open.withLock { Array($0.values) }
        for channel in channels { channel.close(mode: .input, promise: nil) }
        let drainTimeout = TimeAmount.milliseconds(Int64(configuration.listener.drainTimeoutMs))
        MultiThreadedEventLoopGroup.singleton.next().scheduleTask(in: drainTimeout) {
            for channel in self.open.withLock({ Array($0.values) }) { channel.close(promise: nil) }
        }
    }

    private func serve(_ connection: Connection, state: ConnectionState, node: String) async {
        let channel = connection.channel
        let key = ObjectIdentifier(channel)
        let count = connectionCount.wrappingAdd(1, ordering: .relaxed).newValue
        defer { connectionCount.wrappingSubtract(1, ordering: .relaxed) }
        open.withLock { $0[key] = channel }
        defer { open.withLock { $0[key] = nil } }

        if count > configuration.listener.connectionsMax {
            try? await connection.executeThenClose { _, outbound in
                try await outbound.write(
                    Envelope.buffer(
                        Envelope.failure(
                            id: .null, error: .unavailable("connection limit reached; try again later"))))
            }
            return
        }
        let context = RequestContext(
            connection: state,
            supervisor: supervisor, configuration: configuration,
            serverInfo: ServerInfo(version: version, node: node), authThrottle: authThrottle)
        do {
            try await connection.executeThenClose { inbound, outbound in
                try await ConnectionLoop(router: router, context: context, logger: logger)
                    .run(inbound: inbound, outbound: outbound)
            }
        } catch {
            logger.debug("connection ended with an error", metadata: ["error": "\(error)"])
        }
    }
}
