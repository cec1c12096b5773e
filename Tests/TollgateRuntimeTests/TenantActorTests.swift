import Foundation
import Testing
import TollgateCore
import TollgatePricing
import TollgateStorage
import TollgateTesting

@testable import TollgateRuntime

/// The tenant actor in process: calls go straight to the actor, with no socket and no JSON-RPC.
@Suite struct TenantActorTests {
    @Test func aCallIsChargedOnce_andItsRetryReplayed() async throws {
        try await TestRuntime.with { runtime in
            let tenant = try await runtime.makeTenant()
            let first = try await tenant.verify("k1")
            #expect(first.value?.cost == Money(nanos: 1_000_000))
            let again = try await tenant.verify("k1")
            #expect(again.replayed)
            #expect(again["replayed"] == true)
            #expect(again["receiptId"] == .string(first.value!.receiptId))
            let usage = try await tenant.actor.usage(filter: UsageFilter(), groupBy: [])
            #expect(usage.first?.calls == 1)
        }
    }

    /// On a graduated plan, calls queued behind one whose group commit fails were priced with its units
    /// counted; they are priced again, so the month's charges add up to the plan's price of what was recorded.
    @Test func aFailedGroupCommit_leavesNoUnitsInTheCallsQueuedBehindIt() async throws {
        let store = GatedStore()
        try await TestRuntime.with(store: store) { runtime in
            let tenant = try await runtime.makeTenant(plan: [
                "name": "graduated", "currency": "USD",
                "charges": [["strategy": "graduated", "tiers": [["upTo": 3, "rate": "1"], ["rate": "0.5"]]]],
            ])
            _ = try await tenant.actor.openSession("ses_1", metadata: nil, call: nil, credentialId: tenant.credentialId)
            store.closeGate()
            let first = Task { try await tenant.verify("a") }
            while store.entriesAtCommit == 0 { try await Task.sleep(for: .milliseconds(2)) }
            let queued = ["b", "c", "d"].map { key in Task { try await tenant.verify(key) } }
            while runtime.services.ledger.queuedCount < 3 { try await Task.sleep(for: .milliseconds(2)) }
            store.failNextCommits(1)
            store.openGate()
            await #expect(throws: TollgateError.self) { try await first.value }
            var costs: [String] = []
            for task in queued { costs.append(try await task.value["cost"]?.stringValue ?? "?") }
            #expect(costs == ["1", "1", "1"])
            let usage = try await tenant.actor.usage(filter: UsageFilter(), groupBy: [])
            #expect(usage.first?.calls == 3)
            #expect(usage.first?.cost == Money(nanos: 3_000_000_000))
        }
    }

    @Test func aQuietSessionTimesOut_andItsFinalRecordIsWrittenBySweep() async throws {
        let clock = ManualClock()
        try await TestRuntime.with(clock: clock) { runtime in
            let tenant = try await runtime.makeTenant()
            _ = try await tenant.verify("k1", session: "ses_quiet")
            clock.advance(seconds: 3601)
            await tenant.actor.sweepSessions()
            let session = try await tenant.actor.sessionInfo("ses_quiet", as: .tenantOperator)
            #expect(session.state == .closed)
            #expect(session.record.outcome == .timedOut)
            #expect(session.record.totals.calls == 1)
            // Closed an hour after its last call, however late the sweep ran.
            #expect(session.record.closedAt == clock.now().addingTimeInterval(-1))
        }
    }
}
