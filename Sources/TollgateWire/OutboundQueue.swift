import NIOCore
import Synchronization

/// Frames waiting to be written on one connection, taken by a single writer task in batches.
///
/// Answers finish on many tasks at once; writing each with its own flush costs a system call apiece. The
/// writer instead takes everything queued since its last write and writes it with one flush, so under load
/// answers share system calls, and a lone answer still goes out at once.
public final class OutboundQueue: Sendable {
    private struct State {
        var frames: [ByteBuffer] = []
        var waiter: CheckedContinuation<[ByteBuffer]?, Never>?
        var finished = false
    }

    private let state = Mutex(State())

    public init() {}

    public func enqueue(_ frame: ByteBuffer) {
        let handOff = state.withLock { state -> (CheckedContinuation<[ByteBuffer]?, Never>, [ByteBuffer])? in
            guard !state.finished else { return nil }
            if let waiter = state.waiter {
                state.waiter = nil
                return (waiter, [frame])
            }
            state.frames.append(frame)
            return nil
        }
        if let (waiter, frames) = handOff { waiter.resume(returning: frames) }
    }

    /// No more frames will be enqueued; the writer gets what is left, then nil.
    public func finish() {
        let waiter = state.withLock { state -> CheckedContinuation<[ByteBuffer]?, Never>? in
            state.finished = true
            defer { state.waiter = nil }
            return state.frames.isEmpty ? state.waiter : nil
        }
        waiter?.resume(returning: nil)
    }

    /// Everything queued, waiting for at least one frame; nil once finished and drained, or when the
    /// waiting task is cancelled (which finishes the queue). One caller at a time.
    public func next() async -> [ByteBuffer]? {
        await withTaskCancellationHandler {
            await take()
        } onCancel: {
            finish()
        }
    }

    private func take() async -> [ByteBuffer]? {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> [ByteBuffer]?? in
                if !state.frames.isEmpty {
                    defer { state.frames = [] }
                    return .some(state.frames)
                }
                if state.finished || Task.isCancelled { return .some(nil) }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}
