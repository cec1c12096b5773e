import Foundation
import Logging
import Synchronization
import TollgateClient
import TollgateJSON

/// What a proxy sends Tollgate once a call has run, beside the relay: commits and releases (the answer never waits
/// for them: the hold already made the call safe), what Tollgate cannot take now into the spool, the spool sent back
/// in the background, and a session's close. One per agent credential; the stdio proxy has one, the HTTP proxy one
/// per credential it serves.
package final class Settlement: Sendable {
    package let link: TollgateLink
    let spool: UsageSpool
    /// The spool's name for the credential (a hash of its token).
    let credential: String
    /// Who the calls' records say sent them: `proxy`, or `sdk` for the Swift wrapper.
    let source: String
    private let retry: RetryPolicy
    private let logger: Logger
    private let state = Mutex(State())

    private struct State {
        /// Commits and releases on their way to Tollgate: `settled()` waits for them.
        var settling: [UUID: Task<Void, Never>] = [:]
        /// The spool being sent, and whether more was spooled since it started.
        var draining: Task<Void, Never>?
        var spooledSinceDrainStarted = false
    }

    package init(
        link: TollgateLink, spool: UsageSpool, token: String, source: String = "proxy", retry: RetryPolicy,
        logger: Logger
    ) {
        self.link = link
        self.spool = spool
        self.credential = SpoolDelivery.credential(ofToken: token)
        self.source = source
        self.retry = retry
        self.logger = logger
    }

    /// Charges a held call's usage in place of its hold; if Tollgate cannot take it, the spool keeps it.
    package func commit(
        reservationId: String, tool: String, key: String, sessionId: String, usage: ToolCallMeter.CallUsage
    ) {
        let (link, retry) = (self.link, self.retry)
        track { [self] in
            do {
                _ = try await link.connection().commit(
                    reservationId: reservationId, usage: Self.usage(usage), retry: retry)
            } catch {
                // Never dropped: the spool sends it once Tollgate can take it (or records it, if the hold is gone).
                self.spool(
                    UsageSpool.Entry(
                        kind: .commit, credential: credential, sessionId: sessionId, tool: tool, key: key,
                        reservationId: reservationId, usage: Self.usage(usage).json),
                    because: error)
            }
        }
    }

    /// Carries out what the meter says follows a call in `sessionId` — a commit, a release, a spooled usage;
    /// the meter's other actions (relaying, asking Tollgate) are the shell's, and are ignored here.
    package func settle(_ action: ToolCallMeter.Action, sessionId: String) {
        switch action {
        case .commit(let reservationId, let tool, let key, let usage):
            commit(reservationId: reservationId, tool: tool, key: key, sessionId: sessionId, usage: usage)
        case .release(let reservationId): release(reservationId: reservationId)
        case .spool(let tool, let key, let usage): record(tool: tool, key: key, sessionId: sessionId, usage: usage)
        case .toServer, .toClient, .authorize, .quote: break
        }
    }

    /// Gives a hold back; one that cannot be released expires on its own (`--hold-ttl-ms`).
    package func release(reservationId: String) {
        let (link, retry, logger) = (self.link, self.retry, self.logger)
        track {
            do { try await link.connection().release(reservationId: reservationId, retry: retry) } catch {
                logger.warning(
                    "cannot release a hold; it expires on its own",
                    metadata: ["reservation": "\(reservationId)", "error": "\(error)"])
            }
        }
    }

    /// Keeps the usage of a call run without a hold: on disk when this returns, sent when Tollgate can take it.
    package func record(tool: String, key: String, sessionId: String, usage: ToolCallMeter.CallUsage) {
        spool(
            UsageSpool.Entry(
                kind: .record, credential: credential, sessionId: sessionId, tool: tool, key: key,
                usage: Self.usage(usage).json),
            because: nil)
    }

    /// Waits for every commit and release started so far.
    func settled() async {
        while let task = state.withLock({ $0.settling.values.first }) {
            await task.value
        }
    }

    /// Closes a Tollgate session with its final record once its calls are settled — or, when Tollgate cannot take
    /// all of it now, leaves the rest and the close after it in the spool for the next run.
    package func close(sessionId: String) async {
        await settled()
        let running = state.withLock { state in
            defer { state.draining = nil }
            return state.draining
        }
        running?.cancel()
        await running?.value
        let report = await drainOnce()
        let close = UsageSpool.Entry(
            kind: .close, credential: credential, sessionId: sessionId, key: "\(sessionId)-close")
        if report?.stopped == false {
            do {
                _ = try await link.connection().closeSession(sessionId, key: close.key, retry: retry)
                return
            } catch  where SpoolDelivery.verdict(for: close, after: error) != .later {
                return  // closed already, or never opened
            } catch {}
        }
        do {
            try spool.add(close)
            let waiting = try spool.pendingCount(credential: credential)
            logger.warning(
                "Tollgate cannot take the metered usage now; it waits in the spool, and the next proxy run sends it",
                metadata: ["entries": "\(waiting)", "spool": "\(spool.path)"])
        } catch {
            logger.error(
                "cannot spool the session's close", metadata: ["session": "\(sessionId)", "error": "\(error)"])
        }
    }

    static func usage(_ usage: ToolCallMeter.CallUsage) -> Usage {
        Usage(
            inputTokens: usage.inputTokens, outputTokens: usage.outputTokens, reasoningTokens: usage.reasoningTokens,
            durationMs: usage.durationMs, status: usage.failed ? "FAILED" : "SUCCESS", providerCost: usage.providerCost,
            model: usage.model)
    }

    private func track(_ body: @escaping @Sendable () async -> Void) {
        let id = UUID()
        state.withLock { state in
            state.settling[id] = Task {
                await body()
                self.state.withLock { _ = $0.settling.removeValue(forKey: id) }
            }
        }
    }

    /// Writes an entry to the spool (on disk when this returns) and has it sent.
    private func spool(_ entry: UsageSpool.Entry, because error: (any Error)?) {
        do {
            try spool.add(entry)
            logger.notice(
                "spooled metered usage until Tollgate can take it",
                metadata: [
                    "kind": "\(entry.kind.rawValue)", "key": "\(entry.key)", "error": "\(error.map { "\($0)" } ?? "")",
                ])
        } catch {
            // The one place usage can be lost: say everything needed to charge it by hand.
            logger.critical(
                "cannot write to the spool; this usage is not recorded anywhere else",
                metadata: [
                    "spool": "\(spool.path)", "kind": "\(entry.kind.rawValue)", "tool": "\(entry.tool ?? "")",
                    "key": "\(entry.key)", "session": "\(entry.sessionId ?? "")",
                    "usage": "\(entry.usage.map(JSONCodec.string) ?? "")", "error": "\(error)",
                ])
        }
        drainSoon()
    }

    /// Sends the spool in the background until it is empty, waiting longer each time Tollgate cannot take it.
    package func drainSoon() {
        state.withLock { state in
            guard state.draining == nil else {
                state.spooledSinceDrainStarted = true
                return
            }
            // Made under the lock, whose first taker in the task is the task itself: it is in place before it runs.
            state.draining = Task { [self] in
                var waitMs = 250
                while !Task.isCancelled {
                    self.state.withLock { $0.spooledSinceDrainStarted = false }
                    guard let report = await drainOnce() else { break }
                    if report.stopped {
                        try? await Task.sleep(for: .milliseconds(waitMs))
                        waitMs = min(waitMs * 2, 5000)
                    } else if !self.state.withLock({ $0.spooledSinceDrainStarted }) {
                        break
                    }
                }
                self.state.withLock { $0.draining = nil }
            }
        }
    }

    /// One pass over this credential's pending entries; nil when the spool itself failed.
    private func drainOnce() async -> SpoolDelivery.Report? {
        do {
            let link = self.link
            let report = try await SpoolDelivery.drain(
                spool, credential: credential, source: source, product: link.product
            ) {
                try await link.connection()
            }
            if report.delivered > 0 || report.refused > 0 {
                logger.notice(
                    "sent spooled usage to Tollgate",
                    metadata: ["delivered": "\(report.delivered)", "refused": "\(report.refused)"])
            }
            if report.refused > 0 {
                logger.error(
                    "Tollgate refused spooled usage for good; it stays in the spool with the reason",
                    metadata: ["refused": "\(report.refused)", "spool": "\(spool.path)"])
            }
            return report
        } catch {
            logger.error("cannot read or update the spool", metadata: ["spool": "\(spool.path)", "error": "\(error)"])
            return nil
        }
    }
}
