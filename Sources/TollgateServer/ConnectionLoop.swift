import Logging
import NIOCore
import TollgateCore
import TollgateJSON
import TollgateWire

/// One connection's life: read frames, run requests concurrently (pipelining), write answers as they
/// complete (out of order, matched by id), and stop reading at `inFlightMax` unanswered requests.
struct ConnectionLoop {
    let router: Router
    let context: RequestContext
    let logger: Logger

    func run(
        inbound: NIOAsyncChannelInboundStream<InboundFrame>,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    ) async throws {
        let limits = context.configuration.listener
        // Answers are funnelled through one writer task, so frames never interleave and share flushes.
        let answer = OutboundQueue()
        let frameBytesMax = limits.frameBytesMax
        /// Every answer goes out through this: never a frame over the limit the client was told.
        @Sendable func send(_ message: JSONValue) {
            answer.enqueue(Envelope.answer(message, frameBytesMax: frameBytesMax))
        }
        let window = InFlightWindow(limit: limits.inFlightMax)
        context.connection.notify.withLock { $0 = { answer.enqueue(Envelope.buffer($0)) } }
        defer {
            // A closed connection watches nothing any more.
            let subscriptions = context.connection.alertSubscriptions.withLock { $0 }
            for id in subscriptions { context.supervisor.services.alerts.unsubscribe(id) }
            context.connection.notify.withLock { $0 = nil }
        }
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask {
                while let frames = await answer.next() { try await outbound.write(contentsOf: frames) }
            }
            var started = 0
            await withDiscardingTaskGroup { requests in
                do {
                    frames: for try await frame in inbound {
                        switch frame {
                        case .violation(let violation):
                            send(Envelope.failure(id: .null, error: .frame(violation)))
                            break frames
                        case .payload(let payload):
                            await take(payload, started: &started, window: window, requests: &requests, send: send)
                        }
                    }
                } catch {
                    logger.debug("read failed", metadata: ["error": "\(error)"])
                }
                await window.drain(started: started)
            }
            window.close()
            answer.finish()
        }
    }

    private func take(
        _ payload: ByteBuffer, started: inout Int, window: InFlightWindow,
        requests: inout DiscardingTaskGroup, send: @escaping @Sendable (JSONValue) -> Void
    ) async {
        switch Envelope.parse(payload, batchMax: context.configuration.listener.batchMax) {
        case .unanswerable(let error):
            send(Envelope.failure(id: .null, error: error))

        case .single(.failure(let failure)):
            send(Envelope.failure(id: failure.id, error: failure.error))

        case .single(.success(let request)):
            // auth.hello runs before the next frame is read, so requests pipelined behind it see its principal.
            if router.runsAlone(request.method) {
                let response = await router.respond(to: request, context: context)
                if request.id != nil { send(response) }
                return
            }
            await window.acquire(1, started: &started)
            requests.addTask { [router, context] in
                let response = await router.respond(to: request, context: context)
                if request.id != nil { send(response) }
                window.release()
            }

        case .batch(let entries):
            await window.acquire(entries.count, started: &started)
            requests.addTask { [router, context] in
                let responses = await withTaskGroup(of: (Int, JSONValue?).self) { group in
                    for (index, entry) in entries.enumerated() {
                        group.addTask {
                            switch entry {
                            case .failure(let failure):
                                return (index, Envelope.failure(id: failure.id, error: failure.error))
                            case .success(let request):
                                let response = await router.respond(to: request, context: context)
                                return (index, request.id == nil ? nil : response)
                            }
                        }
                    }
                    var ordered = [JSONValue?](repeating: nil, count: entries.count)
                    for await (index, response) in group { ordered[index] = response }
                    return ordered.compactMap { $0 }
                }
                // A batch of notifications only gets no answer at all (JSON-RPC 2.0).
                if !responses.isEmpty { send(.array(responses)) }
                window.release(entries.count)
            }
        }
    }
}
