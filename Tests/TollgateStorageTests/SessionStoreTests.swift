import Foundation
import Testing
import TollgateCore
import TollgateStorage

/// Sessions and alerts behave the same on every backend, and stay within their tenant.
@Suite struct SessionStoreTests {
    let conformance = StoreConformanceTests()

    func session(_ world: StoreConformanceTests.World, id: String) -> SessionRecord {
        SessionRecord(
            tenantId: world.tenant.id, id: id, agentId: world.agent.id, teamId: world.team.id,
            customerId: world.customer.id, openedAt: conformance.now, metadata: #"{"task":"t"}"#)
    }

    @Test(arguments: StoreKind.available)
    func openSessionsSumTheirCharges_closedOnesKeepTheirFinalRecord(kind: StoreKind) async throws {
        let store = try await kind.open()
        let world = try await conformance.makeWorld(store)
        let other = try await conformance.makeWorld(store, name: "other")
        #expect(try await store.write(.openSession(session(world, id: "ses_1"))) == .written)
        #expect(
            try await store.write(.openSession(session(world, id: "ses_1"))) == .unchanged,
            "a second insert of the same id writes nothing"
        )
        #expect(
            try await store.write(.openSession(session(other, id: "ses_1"))) == .written, "ids are scoped by tenant")
        var first = try conformance.entry(world, key: "k1", cost: "0.25")
        first.charge.sessionId = "ses_1"
        first.charge.status = "FAILED"
        var second = try conformance.entry(world, key: "k2", cost: "0.5", at: conformance.now.addingTimeInterval(30))
        second.charge.sessionId = "ses_1"
        _ = try await store.commit([first, second])

        let open = try #require(try await store.session(tenantId: world.tenant.id, id: "ses_1"))
        #expect(open.closedAt == nil)
        #expect(open.metadata == #"{"task":"t"}"#)
        let expectedCost = try Money(decimal: "0.75")
        #expect(open.totals.calls == 2 && open.totals.cost == expectedCost && open.totals.errors == 1)
        #expect(open.totals.inputTokens == 20 && open.totals.outputTokens == 10)
        #expect(open.lastCallAt.map(Timestamp.millis) == Timestamp.millis(conformance.now.addingTimeInterval(30)))
        #expect(try await store.sessions(tenantId: world.tenant.id, .open, limit: 10).map(\.id) == ["ses_1"])
        #expect(try await store.sessions(tenantId: world.tenant.id, .closed, limit: 10).isEmpty)
        #expect(
            try await store.session(tenantId: other.tenant.id, id: "ses_1")?.totals.calls == 0,
            "the other tenant's ses_1 has no calls")

        var final = open.totals
        final.calls = 2
        #expect(
            try await store.write(
                .closeSession(
                    tenantId: world.tenant.id, id: "ses_1", closedAt: conformance.now.addingTimeInterval(60),
                    outcome: .completed, totals: final)) == .written)
        #expect(
            try await store.write(
                .closeSession(
                    tenantId: world.tenant.id, id: "ses_1", closedAt: conformance.now, outcome: .failed, totals: final))
                == .unchanged, "a closed session is not closed again")
        let closed = try #require(try await store.session(tenantId: world.tenant.id, id: "ses_1"))
        #expect(closed.outcome == .completed && closed.totals == final)
        #expect(closed.closedAt.map(Timestamp.millis) == Timestamp.millis(conformance.now.addingTimeInterval(60)))
        #expect(try await store.sessions(tenantId: world.tenant.id, .open, limit: 10).isEmpty)
        #expect(try await store.sessions(tenantId: world.tenant.id, .closed, limit: 10).map(\.id) == ["ses_1"])
        #expect(try await store.sessions(tenantId: world.tenant.id, .all, limit: 10).map(\.id) == ["ses_1"])
        #expect(try await store.session(tenantId: world.tenant.id, id: "ses_missing") == nil)
        try await store.close()
    }

    @Test(arguments: StoreKind.available)
    func alertsAreListedNewestFirst_byKind_withinTheTenant(kind: StoreKind) async throws {
        let store = try await kind.open()
        let world = try await conformance.makeWorld(store)
        let other = try await conformance.makeWorld(store, name: "other")
        for (index, kind) in ["cap_warning", "cap_reached", "session_closed"].enumerated() {
            try await store.insertAlert(
                AlertRecord(
                    tenantId: world.tenant.id, id: "alr_\(index)", kind: kind,
                    at: conformance.now.addingTimeInterval(Double(index)), body: #"{"n":\#(index)}"#))
        }
        try await store.insertAlert(
            AlertRecord(tenantId: other.tenant.id, id: "alr_x", kind: "cap_warning", at: conformance.now, body: "{}"))
        #expect(
            try await store.alerts(tenantId: world.tenant.id, kinds: nil, limit: 10).map(\.id) == [
                "alr_2", "alr_1", "alr_0",
            ])
        #expect(
            try await store.alerts(tenantId: world.tenant.id, kinds: ["cap_warning", "cap_reached"], limit: 10).map(
                \.id) == ["alr_1", "alr_0"])
        #expect(try await store.alerts(tenantId: world.tenant.id, kinds: nil, limit: 1).map(\.body) == [#"{"n":2}"#])
        try await store.close()
    }
}

@Suite struct ReservationStoreTests {
    let conformance = StoreConformanceTests()

    @Test(arguments: StoreKind.available)
    func holdsAreKeyedByIdempotencyKey_finishOnce_andListWhileHeld(kind: StoreKind) async throws {
        let store = try await kind.open()
        let world = try await conformance.makeWorld(store)
        let other = try await conformance.makeWorld(store, name: "other")
        func hold(_ world: StoreConformanceTests.World, id: String, key: String) -> ReservationRecord {
            ReservationRecord(
                tenantId: world.tenant.id, id: id, idempotencyKey: key, path: world.path, tool: "search",
                held: Money(nanos: 250_000_000), currency: "USD", createdAt: conformance.now,
                expiresAt: conformance.now.addingTimeInterval(300))
        }
        func answer(_ world: StoreConformanceTests.World, key: String, params: String) -> IdempotencyRecord {
            IdempotencyRecord(
                tenantId: world.tenant.id, key: key, method: "meter.authorize", params: params,
                result: #"{"state":"held"}"#, createdAt: conformance.now)
        }
        let first = hold(world, id: "rsv_1", key: "k1")
        #expect(try await store.insertReservation(first, idempotency: answer(world, key: "k1", params: "p1")) == nil)
        // The same key again writes nothing and returns what the key recorded first.
        let again = try await store.insertReservation(
            hold(world, id: "rsv_2", key: "k1"), idempotency: answer(world, key: "k1", params: "p2"))
        #expect(again?.params == "p1" && again?.method == "meter.authorize" && again?.result == #"{"state":"held"}"#)
        #expect(
            try await store.insertReservation(
                hold(other, id: "rsv_3", key: "k1"), idempotency: answer(other, key: "k1", params: "p3"))
                == nil, "keys are per tenant")
        #expect(try await store.idempotencyRecord(tenantId: world.tenant.id, key: "k1")?.params == "p1")
        _ = try await store.insertReservation(
            hold(world, id: "rsv_4", key: "k4"), idempotency: answer(world, key: "k4", params: "p4"))
        #expect(try await store.heldReservations(tenantId: world.tenant.id).map(\.id) == ["rsv_1", "rsv_4"])
        #expect(
            try await store.write(
                .finishReservation(tenantId: world.tenant.id, id: "rsv_1", state: .committed, receiptId: "rcp_1"))
                == .written)
        #expect(
            try await store.write(
                .finishReservation(tenantId: world.tenant.id, id: "rsv_1", state: .released, receiptId: nil))
                == .unchanged)
        let stored = try #require(try await store.reservation(tenantId: world.tenant.id, id: "rsv_1"))
        #expect(
            stored.state == .committed && stored.receiptId == "rcp_1" && stored.path == world.path
                && stored.held == first.held)
        #expect(try await store.heldReservations(tenantId: world.tenant.id).map(\.id) == ["rsv_4"])
        #expect(try await store.reservation(tenantId: other.tenant.id, id: "rsv_1") == nil)
        try await store.close()
    }

    /// A commit's charge and the end of its hold are one write: the hold reads as committed, with the charge's
    /// receipt, exactly when the charge is recorded — not when its key turned out taken, and not another
    /// tenant's hold of the same id.
    @Test(arguments: StoreKind.available)
    func aChargeThatSettlesAHold_marksItCommittedInTheSameWrite(kind: StoreKind) async throws {
        let store = try await kind.open()
        let world = try await conformance.makeWorld(store)
        let other = try await conformance.makeWorld(store, name: "other")
        for (owner, id) in [(world, "rsv_1"), (world, "rsv_2"), (other, "rsv_1")] {
            _ = try await store.insertReservation(
                ReservationRecord(
                    tenantId: owner.tenant.id, id: id, idempotencyKey: "hold-\(id)", path: owner.path, tool: "search",
                    held: Money(nanos: 1), currency: "USD", createdAt: conformance.now,
                    expiresAt: conformance.now.addingTimeInterval(300)),
                idempotency: IdempotencyRecord(
                    tenantId: owner.tenant.id, key: "hold-\(id)", method: "meter.authorize", params: "p",
                    result: "{}", createdAt: conformance.now))
        }
        var commit = try conformance.entry(world, key: "commit:rsv_1", cost: "0.25")
        commit.settles = "rsv_1"
        // The same key again, settling another hold: a duplicate, which settles nothing.
        var again = try conformance.entry(world, key: "commit:rsv_1", cost: "0.25")
        again.settles = "rsv_2"
        let outcomes = try await store.commit([commit, again])
        #expect(outcomes.first == .recorded && outcomes.count == 2)
        let settled = try #require(try await store.reservation(tenantId: world.tenant.id, id: "rsv_1"))
        #expect(settled.state == .committed && settled.receiptId == commit.charge.receiptId)
        #expect(try await store.heldReservations(tenantId: world.tenant.id).map(\.id) == ["rsv_2"])
        #expect(try await store.heldReservations(tenantId: other.tenant.id).map(\.id) == ["rsv_1"])
        try await store.close()
    }

    /// Keys are one namespace per tenant: a charge's key cannot be taken by a hold, nor a hold's by a charge,
    /// and each answers with what the key recorded first (its method included).
    @Test(arguments: StoreKind.available)
    func holdsAndChargesShareOneKeyNamespace(kind: StoreKind) async throws {
        let store = try await kind.open()
        let world = try await conformance.makeWorld(store)
        #expect(try await store.commit([conformance.entry(world, key: "charged", cost: "0.25")]) == [.recorded])
        let hold = ReservationRecord(
            tenantId: world.tenant.id, id: "rsv_a", idempotencyKey: "charged", path: world.path,
            tool: "search", held: Money(nanos: 1), currency: "USD", createdAt: conformance.now,
            expiresAt: conformance.now.addingTimeInterval(300))
        let taken = try await store.insertReservation(
            hold,
            idempotency: IdempotencyRecord(
                tenantId: world.tenant.id, key: "charged", method: "meter.authorize", params: "p", result: "{}",
                createdAt: conformance.now))
        #expect(taken?.method == "meter.verify", "the charge's record answers")
        #expect(try await store.heldReservations(tenantId: world.tenant.id).isEmpty, "no hold was written")

        var held = hold
        held.id = "rsv_b"
        held.idempotencyKey = "held"
        #expect(
            try await store.insertReservation(
                held,
                idempotency: IdempotencyRecord(
                    tenantId: world.tenant.id, key: "held", method: "meter.authorize", params: "p",
                    result: #"{"state":"held"}"#,
                    createdAt: conformance.now)) == nil)
        let outcomes = try await store.commit([conformance.entry(world, key: "held", cost: "0.25")])
        guard case .duplicate(let stored)? = outcomes.first else {
            Issue.record("a charge took the key of a hold: \(outcomes)")
            try await store.close()
            return
        }
        #expect(stored.method == "meter.authorize" && stored.result == #"{"state":"held"}"#)
        #expect(try await store.idempotencyRecord(tenantId: world.tenant.id, key: "held")?.method == "meter.authorize")
        try await store.close()
    }
}
