import GRDB
import Logging
import Synchronization

/// Copies committed pages from the write-ahead log back into the database file, on a connection of its own.
///
/// SQLite's default is that the commit which grows the WAL past 1,000 pages runs the checkpoint itself:
/// the writer then copies ~4 MB into the database file and fsyncs it while every caller of that group, and
/// everyone queued behind it, waits. Under load that was most of the writer's time. So the writer's
/// automatic checkpoint is off, and this object runs PASSIVE checkpoints beside it: a passive checkpoint
/// never blocks the writer, copies only what is committed, and once it has caught up the writer starts
/// the WAL over from its beginning, so the file stays bounded.
///
/// Under a steady stream of commits a passive checkpoint rarely finds the writer idle, so the WAL would
/// never start over and would grow without bound. When it holds more than `walFramesMax` frames, the writer
/// itself runs one passive checkpoint between two groups (`catchUpNeeded`): with no write in progress it
/// copies the few frames left, and the writer's next transaction starts the WAL over.
///
/// Requests coalesce: while a checkpoint runs (or pauses after one), any number of requests make exactly one
/// more run after it.
/// Durability does not depend on this object: a committed transaction is already fsynced in the WAL, and
/// SQLite replays the WAL on open if a checkpoint never happened.
final class WALCheckpointer: Sendable {
    private struct State {
        var running = false
        var again = false
        var closed = false
        /// Frames in the WAL after the last checkpoint run.
        var walFrames = 0
    }

    private let connection: DatabaseQueue
    private let state = Mutex(State())
    private let logger: Logger
    let walFramesMax: Int
    /// The least time from one checkpoint to the next.
    let pause: Duration

    init(path: String, walFramesMax: Int, pause: Duration, logger: Logger) throws {
        self.walFramesMax = walFramesMax
        self.pause = pause
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        connection = try DatabaseQueue(path: path, configuration: configuration)
        self.logger = logger
    }

    /// Asks for a checkpoint after a commit; returns at once.
    func request() {
        let start = state.withLock { state -> Bool in
            if state.closed { return false }
            if state.running {
                state.again = true
                return false
            }
            state.running = true
            return true
        }
        if start { Task.detached { await self.runUntilCaughtUp() } }
    }

    private func runUntilCaughtUp() async {
        while true {
            do {
                let result = try await connection.writeWithoutTransaction { db in try db.checkpoint(.passive) }
                state.withLock { $0.walFrames = result.walFrameCount }
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY {
                // The writer's own catch-up checkpoint holds the checkpoint lock: expected under load, and
                // that one does the copying.
                logger.debug("WAL checkpoint skipped: another checkpoint is running")
            } catch {
                // A failed checkpoint loses nothing (the pages stay in the WAL); the next request retries.
                logger.warning("WAL checkpoint failed", metadata: ["error": "\(error)"])
            }
            // Paced: pages that many commits dirty (the ends of the ledger's tables and indexes) are then
            // copied once per pause rather than once per commit. With 10 ms the benchmark ran ~9 % more calls
            // per second at the same p99; with 50 ms and more, the bigger checkpoints' fsyncs held up commits.
            try? await Task.sleep(for: pause)
            let again = state.withLock { state -> Bool in
                if state.again && !state.closed {
                    state.again = false
                    return true
                }
                state.running = false
                return false
            }
            if !again { return }
        }
    }

    /// Whether the WAL has grown past `walFramesMax` and the writer should catch up between two groups.
    var catchUpNeeded: Bool { state.withLock { $0.walFrames > walFramesMax } }

    /// Records the writer's own checkpoint, so the next groups do not repeat it.
    func caughtUp(walFrames: Int) { state.withLock { $0.walFrames = walFrames } }

    /// Returns once no checkpoint is running or requested (for tests).
    func idle() async throws {
        while state.withLock({ $0.running }) { try await Task.sleep(for: .milliseconds(1)) }
    }

    /// Stops taking requests and closes the connection once the running checkpoint, if any, is done.
    func close() async throws {
        state.withLock { $0.closed = true }
        try await idle()
        try connection.close()
    }
}
