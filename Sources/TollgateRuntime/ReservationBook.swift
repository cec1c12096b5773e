import Foundation
import TollgateStorage

/// The tenant's `meter.authorize` holds that are still held: by id, by session (a closing session releases its
/// holds) and by expiry (the sweeper lets go of the ones whose time is up), so that none of these looks at
/// the other holds. Keys are found through the tenant's idempotency rule, not here.
struct ReservationBook {
    private var byId: [String: ReservationRecord] = [:]
    private var idsBySession: [String: Set<String>] = [:]
    /// Every held id with its expiry, soonest first (a binary heap). An entry whose hold has ended since is
    /// skipped when it comes up, so ending a hold never searches the heap.
    private var expiries = DeadlineHeap()

    var count: Int { byId.count }

    subscript(id: String) -> ReservationRecord? { byId[id] }

    mutating func insert(_ reservation: ReservationRecord) {
        byId[reservation.id] = reservation
        idsBySession[reservation.path.sessionId, default: []].insert(reservation.id)
        expiries.push(reservation.expiresAt, reservation.id)
    }

    /// Takes the hold `id` out of the book; nil if it was not held.
    @discardableResult
    mutating func remove(_ id: String) -> ReservationRecord? {
        guard let reservation = byId.removeValue(forKey: id) else { return nil }
        let session = reservation.path.sessionId
        idsBySession[session]?.remove(id)
        if idsBySession[session]?.isEmpty == true { idsBySession[session] = nil }
        return reservation
    }

    /// The holds of the session `id`.
    func held(inSession id: String) -> [ReservationRecord] {
        (idsBySession[id] ?? []).compactMap { byId[$0] }.sorted { $0.id < $1.id }
    }

    /// The holds whose time is up at `now`, soonest first. They stay in the book until removed.
    mutating func expired(at now: Date) -> [ReservationRecord] {
        var due: [ReservationRecord] = []
        while let (expiresAt, id) = expiries.peek(), expiresAt <= now {
            expiries.pop()
            // Skipped: ended since it was pushed.
            guard let reservation = byId[id], reservation.expiresAt == expiresAt else { continue }
            due.append(reservation)
        }
        // Handed back until removed: a hold whose end could not be stored is tried again at the next sweep.
        for reservation in due { expiries.push(reservation.expiresAt, reservation.id) }
        return due
    }
}
