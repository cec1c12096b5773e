import NIOCore

/// Closes a connection that has gone quiet: nothing read and nothing written for `unauthenticatedIdle` while
/// it has not authenticated, or for `authenticatedIdle` (nil: never) once it has. Without it, sockets opened
/// and left would hold the connection limit forever. Sits next to the socket, so every byte counts as
/// activity, answers and alert notifications included.
final class IdleCloser: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let unauthenticatedIdle: TimeAmount
    private let authenticatedIdle: TimeAmount?
    private let isAuthenticated: @Sendable () -> Bool
    private var lastActivity = NIODeadline.now()
    private var check: Scheduled<Void>?

    init(
        unauthenticatedIdle: TimeAmount, authenticatedIdle: TimeAmount?, isAuthenticated: @escaping @Sendable () -> Bool
    ) {
        self.unauthenticatedIdle = unauthenticatedIdle
        self.authenticatedIdle = authenticatedIdle
        self.isAuthenticated = isAuthenticated
    }

    func handlerAdded(context: ChannelHandlerContext) {
        lastActivity = .now()
        if context.channel.isActive { schedule(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if check == nil { schedule(context) }
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        check?.cancel()
        check = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        check?.cancel()
        check = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastActivity = .now()
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        lastActivity = .now()
        context.write(data, promise: promise)
    }

    /// The idle limit that applies now; nil when the connection may stay quiet for ever.
    private var limit: TimeAmount? { isAuthenticated() ? authenticatedIdle : unauthenticatedIdle }

    private func schedule(_ context: ChannelHandlerContext) {
        // Looked at again after the shorter limit, or a second when it may stay quiet: the principal changes
        // without this handler seeing it.
        let wait = limit.map { max($0 - (.now() - lastActivity), .milliseconds(10)) } ?? .seconds(1)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        check = context.eventLoop.scheduleTask(in: min(wait, .seconds(1))) {
            let (handler, context) = loopBound.value
            handler.evaluate(context)
        }
    }

    private func evaluate(_ context: ChannelHandlerContext) {
        check = nil
        guard context.channel.isActive else { return }
        if let limit, NIODeadline.now() - lastActivity >= limit {
            context.close(promise: nil)
            return
        }
        schedule(context)
    }
}
