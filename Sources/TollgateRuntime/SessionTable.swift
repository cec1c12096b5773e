import Foundation
import TollgateCore
import TollgateStorage

/// One open session as the tenant holds it: the stored record (with running totals), the lifecycle, and
/// the calls admitted but not yet recorded, which a close waits for so that the final record is complete.
struct OpenSession {
    var record: SessionRecord
    var lifecycle: SessionLifecycle
    /// Calls (and holds being stored) admitted in the session and not yet finished.
    var inFlight = 0
    /// Set while the final record is being written, so that it is written once.
    var finalizing = false
    /// Closers waiting for the calls in flight.
    var waiters: [CheckedContinuation<Void, Never>] = []
}

/// The tenant's open sessions: their lifecycles (`SessionLifecycle`), the calls in flight in each, the order
/// they opened in (for `sessions.list`), when each times out (for the sweep), which are closed in memory and
/// wait for their final record, and how long the agents' sessions usually last (`projectedCost`).
///
/// Sessions live here, in the tenant's actor, not in actors of their own: a call's session cap is checked in
/// the same turn as every other cap on its path, which is what keeps the caps exact under racing calls.
/// Every step is given the time, so tests drive it with any clock.
struct SessionTable {
    private(set) var timeouts: SessionTimeouts
    /// Open sessions a tenant may have at once.
    let openMax: Int
    private var open: [String: OpenSession] = [:]
    /// When each open session times out, soonest first: the sweep looks at these, not at every session. An
    /// entry moved by later calls is pushed again with its real deadline when it comes up.
    private var deadlines = DeadlineHeap()
    /// Sessions closed in memory whose final record is not written yet.
    private var closing: Set<String> = []
    private var order = SessionOrder()
    private var lengths = SessionLengths()

    init(timeouts: SessionTimeouts, openMax: Int) {
        self.timeouts = timeouts
        self.openMax = openMax
    }

    var count: Int { open.count }

    subscript(id: String) -> OpenSession? { open[id] }

    var isFull: Bool { open.count >= openMax }

    /// Takes a stored open session in (false if it is held already). Its spend goes to the cap ledger, which
    /// the caller owns.
    @discardableResult
    mutating func adopt(_ record: SessionRecord) -> Bool {
        guard open[record.id] == nil, record.closedAt == nil else { return false }
        let lifecycle = SessionLifecycle(
            openedAt: record.openedAt, lastActivityAt: record.lastCallAt, closedAt: nil, outcome: nil)
        open[record.id] = OpenSession(record: record, lifecycle: lifecycle)
        order.insert(record.id, openedAt: record.openedAt)
        if let deadline = lifecycle.timesOutAt(timeouts) { deadlines.push(deadline, record.id) }
        return true
    }

    /// A closed session's length, learnt for `projectedCost`.
    mutating func learn(_ record: SessionRecord) {
        guard let closedAt = record.closedAt else { return }
        lengths.record(agentId: record.agentId, seconds: closedAt.timeIntervalSince(record.openedAt))
    }

    /// Lets time pass for the session `id` and returns its state; one that closes now (timed out) waits for
    /// its final record. Nil if the session is not held.
    @discardableResult
    mutating func advance(_ id: String, to now: Date) -> SessionState? {
        guard open[id] != nil else { return nil }
        open[id]!.lifecycle.advance(to: now, timeouts: timeouts)
        let state = open[id]!.lifecycle.state
        if state == .closed { closing.insert(id) }
        return state
    }

    /// The time a call in the session `id` is stamped with: `now`, but never before the session opened.
    ///
    /// Storage sums an open session's charges from its opening on (`at >= opened_at`), which is what rebuilds
    /// its totals and its cap after a restart; a charge stamped before its session's opening would be left out
    /// and the session's cap crossed. Calls racing to open a session each read the clock before one of them
    /// stores the session, so without this a call could be stamped a millisecond before the opening it waited
    /// for.
    func callTime(in id: String, now: Date) -> Date {
        guard let openedAt = open[id]?.record.openedAt, openedAt > now else { return now }
        return openedAt
    }

    /// Activity in the session `id` at `now` (a call, a hold, the open itself): CREATED or IDLE becomes ACTIVE;
    /// a closed (or unknown) session is CONFLICT.
    mutating func activity(in id: String, at now: Date) throws(TollgateError) {
        // Mutated in place: a copy out of the dictionary and back would copy the session on every call.
        guard open[id] != nil else { throw .conflict("session \(id) is closed") }
        do { try open[id]!.lifecycle.recordCall(at: now, timeouts: timeouts) } catch {
            closing.insert(id)
            throw .conflict("session \(id) is closed")
        }
    }

    /// A call is admitted in `id`: counts as activity, and as in flight until `callEnded`.
    mutating func callStarted(in id: String, at now: Date) throws(TollgateError) {
        try activity(in: id, at: now)
        open[id]!.inFlight += 1
    }

    /// The call admitted in `id` was recorded (`charge`) or not (nil). Returns the closers to wake: the last
    /// call in flight of a closing session lets its close go on. Throws (after counting the call out) only if
    /// the session's totals would leave the range of money, which the caller logs.
    mutating func callEnded(in id: String, recorded charge: ChargeRecord?) -> (
        wake: [CheckedContinuation<Void, Never>], outOfRange: Bool
    ) {
        guard open[id] != nil else { return ([], false) }
        open[id]!.inFlight -= 1
        var outOfRange = false
        if let charge {
            do { try open[id]!.record.totals.add(charge) } catch { outOfRange = true }
            open[id]!.record.lastCallAt = charge.at
        }
        guard open[id]!.inFlight == 0, !open[id]!.waiters.isEmpty else { return ([], outOfRange) }
        defer { open[id]!.waiters = [] }
        return (open[id]!.waiters, outOfRange)
    }

    /// Closes `id` at `now` with the caller's outcome. False if it was closed already (by its timeout, say).
    mutating func close(_ id: String, at now: Date, outcome: SessionOutcome) -> Bool {
        guard open[id] != nil else { return false }
        closing.insert(id)
        do { try open[id]!.lifecycle.close(at: now, outcome: outcome, timeouts: timeouts) } catch { return false }
        return true
    }

    /// Closes every session whose timeout has come by `now`.
    mutating func closeTimedOut(at now: Date) {
        while let (due, id) = deadlines.peek(), due <= now {
            deadlines.pop()
            guard advance(id, to: now) != .closed, let next = open[id]?.lifecycle.timesOutAt(timeouts) else { continue }
            deadlines.push(next, id)
        }
    }

    /// The sessions closed in memory whose final record is neither written nor being written.
    var awaitingFinalRecord: [String] { closing.filter { open[$0]?.finalizing == false }.sorted() }

    /// What finalizing `id` must do first.
    enum FinalizeStart: Equatable {
        /// Not closed, unknown, or being finalized already: nothing to do.
        case nothing
        /// Calls are in flight: wait for them (`waitForCalls`), then `readyToFinalize`.
        case waitForCalls
        /// Ready: release its holds, then write its final record.
        case ready
    }

    /// Starts finalizing `id` (once: a second start gets `.nothing` until this one ends).
    mutating func startFinalizing(_ id: String) -> FinalizeStart {
        guard let session = open[id], session.lifecycle.state == .closed, !session.finalizing else { return .nothing }
        open[id]!.finalizing = true
        return session.inFlight > 0 ? .waitForCalls : .ready
    }

    /// Waits, in the caller's actor turn, until the calls in flight in `id` have ended.
    mutating func waitForCalls(_ id: String, _ continuation: CheckedContinuation<Void, Never>) {
        guard open[id] != nil, open[id]!.inFlight > 0 else { return continuation.resume() }
        open[id]!.waiters.append(continuation)
    }

    /// The final record of `id` once it is closed and its calls ended: its record with the close's time and
    /// outcome.
    func finalRecord(_ id: String) -> SessionRecord? {
        guard let session = open[id], let closedAt = session.lifecycle.closedAt else { return nil }
        var record = session.record
        record.closedAt = closedAt
        record.outcome = session.lifecycle.outcome
        return record
    }

    /// Writing the final record failed: the next sweep tries again.
    mutating func finalizeFailed(_ id: String) { open[id]?.finalizing = false }

    /// The final record of `id` is written: the session is forgotten, and its length learnt.
    mutating func finalized(_ record: SessionRecord) {
        open[record.id] = nil
        closing.remove(record.id)
        order.closedOne { open[$0] != nil }
        learn(record)
    }

    /// New timeouts for every session: each one's deadline is worked out again.
    mutating func configure(_ timeouts: SessionTimeouts) {
        self.timeouts = timeouts
        deadlines.removeAll()
        for (id, session) in open {
            if let deadline = session.lifecycle.timesOutAt(timeouts) { deadlines.push(deadline, id) }
        }
    }

    /// Up to `limit` open sessions, newest first, each advanced to `now`.
    mutating func newest(_ limit: Int, at now: Date) -> [OpenSession] {
        let ids = order.newest(limit) { open[$0] != nil }
        return ids.compactMap { id in
            advance(id, to: now)
            return open[id]
        }
    }

    /// Cost so far × the agent's typical session length ÷ the time this one has run: what it will cost at its
    /// current rate if it runs as long as the agent's sessions usually do. Nil without closed sessions to learn
    /// from, before a call, or once closed.
    func projectedCost(of id: String, at now: Date) -> Money? {
        guard let session = open[id], session.lifecycle.state != .closed,
            let typical = lengths.typicalSeconds(agentId: session.record.agentId)
        else { return nil }
        let elapsedMs = Int64((now.timeIntervalSince(session.record.openedAt) * 1000).rounded(.down))
        let typicalMs = Int64((typical * 1000).rounded())
        guard elapsedMs > 0, session.record.totals.calls > 0 else { return nil }
        guard typicalMs > elapsedMs else { return session.record.totals.cost }
        let cost = Int128(session.record.totals.cost.nanos)
        let projected = (cost * Int128(typicalMs) + Int128(elapsedMs / 2)) / Int128(elapsedMs)
        return Int64(exactly: projected).map(Money.init(nanos:))
    }
}

/// How long each agent's sessions usually last, learnt from the ones that closed: `projectedCost`'s horizon.
struct SessionLengths {
    private var totals: [String: (count: Int, seconds: Double)] = [:]

    mutating func record(agentId: String, seconds: Double) {
        var entry = totals[agentId] ?? (0, 0)
        entry.count += 1
        entry.seconds += max(0, seconds)
        totals[agentId] = entry
    }

    func typicalSeconds(agentId: String) -> Double? {
        guard let entry = totals[agentId], entry.count > 0 else { return nil }
        return entry.seconds / Double(entry.count)
    }
}
