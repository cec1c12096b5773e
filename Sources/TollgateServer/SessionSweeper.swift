import ServiceLifecycle
import TollgateRuntime

/// Every `sessionSweepMs`, lets each running tenant close its timed-out sessions and write their final
/// records. A session's `closedAt` is when its timeout elapsed, so a late sweep changes no record.
struct SessionSweeper: Service {
    let supervisor: Supervisor
    let intervalMs: Int

    func run() async throws {
        // Stops at graceful shutdown: the sleep is cancelled and the loop ends.
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: .milliseconds(intervalMs))
                await supervisor.sweepSessions()
            }
        }
    }
}
