import Crypto
import Foundation
import TollgateClient
import TollgateJSON
import TollgateWire

/// How the spool's entries reach Tollgate, and what each answer means for an entry. `verdict` is the rule, pure
/// and tested without a socket; `drain` carries it out.
public enum SpoolDelivery {
    /// What becomes of an entry after Tollgate answered (or could not be reached).
    public enum Verdict: Sendable, Equatable {
        /// Tollgate has it (now, or from an earlier attempt: keyed calls replay): it leaves the spool.
        case delivered
        /// Tollgate cannot take it now: it stays, and delivery stops here so that entries keep their order.
        case later
        /// Send it this way instead, now.
        case sendInstead(UsageSpool.Entry)
        /// Tollgate refused it for good: it stays in the spool, with the reason, for an operator.
        case refused(String)
    }

    /// What a failed send of `entry` means.
    public static func verdict(for entry: UsageSpool.Entry, after error: any Error) -> Verdict {
        // A lost connection, a timeout, or a retryable refusal (`UNAVAILABLE`, `IN_PROGRESS`, `RATE_LIMITED`).
        guard let error = error as? RPCError, !error.retryable else { return .later }
        let reason = error.reason ?? "error \(error.code)"
        switch (entry.kind, reason) {
        case (.commit, "CONFLICT"):
            // The hold expired (or its session closed and released it) before the commit arrived: the call ran,
            // so its usage is recorded on its own, under a key of its own.
            var instead = entry
            instead.kind = .record
            instead.reservationId = nil
            return .sendInstead(instead)
        case (.record, "CONFLICT") where entry.sessionId != nil:
            // Its session was closed meanwhile (timed out, say): the call is charged outside it.
            var instead = entry
            instead.sessionId = nil
            return .sendInstead(instead)
        case (.close, "CONFLICT"), (.close, "NOT_FOUND"):
            // Already closed (by its timeout, or a replay), or never opened: nothing left to do.
            return .delivered
        default:
            return .refused("\(reason): \(error.message)")
        }
    }

    /// The key a spooled call is recorded under: its own, distinct from the hold's, which Tollgate may already
    /// have seen under `meter.authorize`.
    public static func recordKey(_ callKey: String) -> String { callKey + ".r" }

    /// Sends one entry; a spooled call's record says who sent it (`source`: `proxy`, or `sdk` for the Swift
    /// wrapper), as its hold would have.
    static func send(
        _ entry: UsageSpool.Entry, source: String, product: String? = nil, on connection: TollgateConnection
    ) async throws {
        // One attempt here: `drain` decides what a failure means, and the next drain tries again.
        let once = RetryPolicy(attempts: 1)
        switch entry.kind {
        case .commit:
            var params: [String: JSONValue] = ["reservationId": .string(entry.reservationId ?? "")]
            if let usage = entry.usage { params["usage"] = usage }
            _ = try await connection.call(.meterCommit, .object(params), retry: once)
        case .record:
            var params: [String: JSONValue] = [
                "tool": .string(entry.tool ?? ""), "idempotencyKey": .string(recordKey(entry.key)),
                "source": .string(source),
            ]
            if let sessionId = entry.sessionId { params["sessionId"] = .string(sessionId) }
            if let usage = entry.usage { params["usage"] = usage }
            if let product { params["product"] = .string(product) }
            _ = try await connection.call(.meterVerify, .object(params), retry: once)
        case .close:
            _ = try await connection.closeSession(entry.sessionId ?? "", key: entry.key, retry: once)
        }
    }

    /// What one drain did.
    public struct Report: Sendable, Equatable {
        public var delivered = 0
        public var refused = 0
        /// True when it stopped at an entry Tollgate could not take yet.
        public var stopped = false
    }

    /// Sends `credential`'s pending entries in order until the spool has none or Tollgate cannot take one.
    public static func drain(
        _ spool: UsageSpool, credential: String, source: String = "proxy", product: String? = nil,
        connection: () async throws -> TollgateConnection
    ) async throws -> Report {
        var report = Report()
        while true {
            let entries = try spool.pending(credential: credential)
            if entries.isEmpty { return report }
            for var entry in entries {
                while true {
                    let verdict: Verdict
                    do {
                        try await send(entry, source: source, product: product, on: try await connection())
                        verdict = .delivered
                    } catch {
                        verdict = Self.verdict(for: entry, after: error)
                    }
                    switch verdict {
                    case .delivered:
                        try spool.remove(entry.seq)
                        report.delivered += 1
                    case .later:
                        report.stopped = true
                        return report
                    case .sendInstead(let instead):
                        try spool.replace(instead)
                        entry = instead
                        continue
                    case .refused(let reason):
                        try spool.refuse(entry.seq, reason: reason)
                        report.refused += 1
                    }
                    break
                }
            }
        }
    }

    /// Who an entry belongs to: a hash of the agent's token, so that the spool never holds the token itself.
    public static func credential(ofToken token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).prefix(16).map { String(format: "%02x", $0) }.joined()
    }
}
