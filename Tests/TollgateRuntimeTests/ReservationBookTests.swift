import Foundation
import Testing
import TollgateCore
import TollgateStorage

@testable import TollgateRuntime

/// The holds still held, found by id, by session and by expiry without looking at the others.
@Suite struct ReservationBookTests {
    static let t0 = Date(timeIntervalSince1970: 1_795_000_000)

    static func hold(_ id: String, session: String, expiresIn seconds: TimeInterval) -> ReservationRecord {
        ReservationRecord(
            tenantId: "ten_1", id: id, idempotencyKey: "k-\(id)",
            path: ChargePath(
                customerId: "cus_1", teamId: "team_1", agentId: "agt_1", sessionId: session, credentialId: "cred_1"),
            tool: "t", held: Money(nanos: 1), currency: "USD", createdAt: t0,
            expiresAt: t0.addingTimeInterval(seconds))
    }

    @Test func holdsAreFoundByIdSessionAndExpiry() {
        var book = ReservationBook()
        book.insert(Self.hold("rsv_1", session: "s1", expiresIn: 10))
        book.insert(Self.hold("rsv_2", session: "s1", expiresIn: 20))
        book.insert(Self.hold("rsv_3", session: "s2", expiresIn: 5))
        #expect(book["rsv_2"]?.path.sessionId == "s1")
        #expect(book.held(inSession: "s1").map(\.id) == ["rsv_1", "rsv_2"])
        let due = book.expired(at: Self.t0.addingTimeInterval(10))
        #expect(due.map(\.id) == ["rsv_3", "rsv_1"])
        // Handed back until removed: a hold whose end could not be stored is tried again.
        let again = book.expired(at: Self.t0.addingTimeInterval(10))
        #expect(again.map(\.id) == ["rsv_3", "rsv_1"])
        let removed = book.remove("rsv_3")
        let removedTwice = book.remove("rsv_3")
        #expect(removed != nil)
        #expect(removedTwice == nil, "taken out once")
        let left = book.expired(at: Self.t0.addingTimeInterval(10))
        #expect(left.map(\.id) == ["rsv_1"])
        #expect(book.count == 2)
    }
}
