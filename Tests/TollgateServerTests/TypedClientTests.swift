import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

/// The Swift client's typed calls: answers read into typed values with exact money, and a failure the server
/// marks retryable tried again with the same key — charged once, whatever the retries.
@Suite struct TypedClientTests {
    @Test func typedCalls_readTheirAnswers() async throws {
        try await TestServer.with { server in
            do {
                let world = try await Fixture.make(on: server)
                let agent = try await server.connect(token: world.agentToken)
                let session = try await agent.openSession("ses_typed", key: "open-1")
                #expect(session.state == "ACTIVE" && !session.replayed)
                let receipt = try await agent.verify(
                    tool: "transform", key: "v1", sessionId: "ses_typed", quantity: 2,
                    usage: Usage(inputTokens: 10, status: "SUCCESS", providerCost: try Money(decimal: "0.01")))
                let half = try Money(decimal: "0.5")
                #expect(receipt.cost == half)
                #expect(receipt.currency == "USD" && receipt.sessionId == "ses_typed" && !receipt.replayed)
                let again = try await agent.verify(
                    tool: "transform", key: "v1", sessionId: "ses_typed", quantity: 2,
                    usage: Usage(inputTokens: 10, status: "SUCCESS", providerCost: try Money(decimal: "0.01")))
                #expect(again.replayed && again.receiptId == receipt.receiptId)
                let hold = try await agent.authorize(tool: "search", key: "a1", sessionId: "ses_typed", quantity: 10)
                let (tenSearches, threeSearches) = (try Money(decimal: "0.01"), try Money(decimal: "0.003"))
                #expect(hold.held == tenSearches)
                let committed = try await agent.commit(reservationId: hold.reservationId, quantity: 3)
                #expect(committed.cost == threeSearches && committed.reservationId == hold.reservationId)
                let other = try await agent.authorize(tool: "search", key: "a2", sessionId: "ses_typed")
                let state = try await agent.release(reservationId: other.reservationId)
                #expect(state == "released")
                let closed = try await agent.closeSession("ses_typed", key: "close-1")
                let total = try Money(decimal: "0.503")
                #expect(closed.state == "CLOSED" && closed.calls == 2 && closed.cost == total)
                let closedAgain = try await agent.closeSession("ses_typed", key: "close-1")
                #expect(closedAgain.replayed)
            } catch {
                Issue.record(error)
            }
        }
    }

    @Test func aRetryableFailure_isTriedAgainWithTheSameKey_andChargedOnce() async throws {
        let store = GatedStore()
        try await TestServer.with(store: store) { server in
            do {
                let world = try await Fixture.make(on: server)
                let agent = try await server.connect(token: world.agentToken)
                // Without retries the failed group commit is the caller's to see.
                store.failNextCommits(1)
                let refused = await rpcError {
                    _ = try await agent.verify(tool: "search", key: "k-never", retry: .never)
                    return .null
                }
                #expect(refused?.reason == "UNAVAILABLE" && refused?.retryable == true)
                // With them, the next attempt carries the same key and is recorded once.
                store.failNextCommits(1)
                let before = store.commitsStarted
                let receipt = try await agent.verify(tool: "search", key: "k-retried", retry: RetryPolicy(backoffMs: 1))
                #expect(!receipt.replayed)
                #expect(store.commitsStarted == before + 2)
                let op = try await server.connect(token: world.operatorToken)
                #expect(try await op.call("usage.summary")["total"]?["calls"] == 1)
                // A refusal is not retried.
                let budget = await rpcError {
                    _ = try await agent.verify(tool: "search", key: "k-bad", quantity: 0)
                    return .null
                }
                #expect(budget?.retryable == false)
            } catch {
                Issue.record(error)
            }
        }
    }
}
