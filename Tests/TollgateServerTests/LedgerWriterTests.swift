import Foundation
import Synchronization
import Testing
import TollgateCore
import TollgateRuntime
import TollgateStorage
import TollgateTesting

/// The ledger writer runs on a thread of its own; shutting it down, gracefully or by cancellation, must
/// commit what was queued, refuse what comes after, and let `run()` return.
@Suite struct LedgerWriterTests {
    func entry(_ key: String) -> LedgerEntry {
        let now = Date(timeIntervalSince1970: 1_795_000_000)
        let path = ChargePath(customerId: "cus", teamId: "team", agentId: "agt", sessionId: "ses", credentialId: "cred")
        return LedgerEntry(
            charge: ChargeRecord(
                receiptId: Identifiers.make(.receipt), tenantId: "ten", path: path, subscriptionId: "sub",
                planId: "plan", planVersion: 1, tool: "search", quantity: 1, cost: Money(nanos: 1_000_000),
                providerCost: .zero, currency: "USD", idempotencyKey: key, at: now),
            idempotency: IdempotencyRecord(
                tenantId: "ten", key: key, method: "meter.verify", params: "{}", result: "{}",
                createdAt: now))
    }

    @Test func cancellingRunCommitsWhatIsQueued_refusesWhatComesAfter_andReturns() async throws {
        let store = GatedStore()
        store.closeGate()
        let writer = LedgerWriter(store: store)
        let running = Task { try await writer.run() }
        // One group is held at the gate; the other calls queue behind it.
        let submissions = (0..<5).map { n in Task { try await writer.submit(entry("k\(n)")) } }
        while store.commitsStarted == 0 || writer.queuedCount + store.entriesAtCommit < 5 {
            try await Task.sleep(for: .milliseconds(5))
        }

        running.cancel()
        store.openGate()
        await #expect(throws: TollgateError.self) { try await writer.submit(entry("late")) }
        for submission in submissions { #expect(try await submission.value == .recorded) }
        #expect(store.entriesAtCommit == 5)
        // `run()` returns: waited for by polling, so that a writer that never stops fails the test, not hangs it.
        let returned = Mutex(false)
        Task {
            _ = try? await running.value
            returned.withLock { $0 = true }
        }
        for _ in 0..<500 where !returned.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(returned.withLock { $0 }, "run() did not return after cancellation")
    }
}
