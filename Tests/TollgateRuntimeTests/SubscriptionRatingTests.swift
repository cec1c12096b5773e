import Foundation
import Testing
import TollgateCore
import TollgateJSON
import TollgatePricing
import TollgateStorage
import TollgateStrategies

@testable import TollgateRuntime

/// The running totals a tenant prices calls against, and how they stay exact when an admitted call is not
/// recorded: the rules of `SubscriptionRating` and `PricingStream`, without an actor or a store.
@Suite struct SubscriptionRatingTests {
    /// One period holding every moment these tests use.
    static let always = BillingPeriod(start: .distantPast, end: .distantFuture)

    /// 3 units at 1.00, then 0.50 each.
    static let graduated =
        #"{"name":"g","currency":"USD","charges":[{"strategy":"graduated","tiers":[{"upTo":3,"rate":"1"},"#
        + #"{"rate":"0.5"}]}]}"#
    static let perTool = #"{"name":"p","currency":"USD","charges":[{"strategy":"per_tool","rates":{"*":"1"}}]}"#

    static func plan(_ json: String) throws -> Plan {
        try PlanDocument(json: JSONCodec.parse(json)).compile(id: "plan_x", version: 1, registry: .builtIn)
    }

    static func call(_ quantity: Int64 = 1) -> RatedEvent { RatedEvent(tool: "search", quantity: quantity) }

    static func admit(_ rating: SubscriptionRating, _ event: RatedEvent) throws
        -> (price: Money, number: UInt64, ticket: PricingTicket?)
    {
        let quote = try rating.quote(event)
        let position = try rating.admit(event, quote: quote)
        return (quote.price, position.number, position.ticket)
    }

    @Test func callsInFlightArePricedOneAfterTheOther() throws {
        let rating = SubscriptionRating(recorded: PlanRating(plan: try Self.plan(Self.graduated)), period: Self.always)
        let prices = try (0..<5).map { _ in try Self.admit(rating, Self.call()).price.decimalString }
        #expect(prices == ["1", "1", "1", "0.5", "0.5"])
    }

    @Test func aLostCall_makesTheCallsPricedAfterItStale_andLeavesTheTotals() throws {
        let rating = SubscriptionRating(recorded: PlanRating(plan: try Self.plan(Self.graduated)), period: Self.always)
        let a = try Self.admit(rating, Self.call(2))
        let b = try Self.admit(rating, Self.call())
        let c = try Self.admit(rating, Self.call())
        #expect([a.price, b.price, c.price].map(\.decimalString) == ["2", "1", "0.5"])
        let stream = try #require(a.ticket?.stream)
        // The writer finds b lost (its group failed): c, priced with b counted, is stale; a is not.
        stream.notRecorded(b.number)
        #expect(!stream.isStale(try #require(a.ticket)))
        #expect(stream.isStale(try #require(c.ticket)))
        // Even before the actor hears of it, the next quote leaves b and c out: units 3 and 4 after a.
        #expect(try rating.quote(Self.call(2)).price.decimalString == "1.5")
        rating.recorded(a.number)
        rating.notRecorded(b.number)
        rating.notRecorded(c.number)
        // c priced again: the third unit.
        let again = try Self.admit(rating, Self.call())
        #expect(again.price.decimalString == "1")
        #expect(!stream.isStale(try #require(again.ticket)))
    }

    @Test func aPlanPricingEachCallOnItsOwn_needsNoTickets() throws {
        let rating = SubscriptionRating(recorded: PlanRating(plan: try Self.plan(Self.perTool)), period: Self.always)
        let a = try Self.admit(rating, Self.call())
        #expect(a.ticket == nil)
        rating.notRecorded(a.number)
        #expect(try Self.admit(rating, Self.call()).price.decimalString == "1")
    }

    /// The property the runtime promises: whatever calls are lost, and in whatever order their callers hear
    /// of it, the recorded calls' prices add up to the plan's price of the recorded usage. A writer commits
    /// calls in admission order, loses some (failed groups, duplicates), refuses the stale ones, and callers
    /// learn outcomes late and out of order, pricing stale and failed calls again.
    @Test(arguments: [1, 2, 3, 4, 5] as [UInt64])
    func recordedPricesAddUpToThePlansPriceOfTheRecordedUsage(seed: UInt64) throws {
        var random = SplitMix64(seed: seed)
        let plan = try Self.plan(
            #"{"name":"m","currency":"USD","charges":[{"strategy":"graduated","tiers":[{"upTo":10,"rate":"1"},"#
                + #"{"upTo":40,"rate":"0.5"},{"rate":"0.125"}]},{"strategy":"session_bundle","fee":"5","#
                + #""includedCalls":3,"overageRate":"0.1"}]}"#
        )
        let rating = SubscriptionRating(recorded: PlanRating(plan: plan), period: Self.always)
        struct Queued {
            var event: RatedEvent
            var price: Money
            var number: UInt64
            var ticket: PricingTicket?
        }
        enum Heard { case recorded, lost }
        var queue: [Queued] = []
        var heard: [(Queued, Heard)] = []
        var recorded: [Queued] = []
        var toPriceAgain: [RatedEvent] = []
        func admit(_ event: RatedEvent) throws {
            let admitted = try Self.admit(rating, event)
            queue.append(Queued(event: event, price: admitted.price, number: admitted.number, ticket: admitted.ticket))
        }
        for step in 0..<4000 {
            let roll = Int.random(in: 0..<100, using: &random)
            if step < 2600, roll < 35 {
                let session = "s\(Int.random(in: 0..<6, using: &random))"
                var event = Self.call(Int64.random(in: 1...3, using: &random))
                event.sessionId = session
                try admit(toPriceAgain.popLast() ?? event)
            } else if roll < 75, !queue.isEmpty {
                // The writer commits the oldest queued call.
                let call = queue.removeFirst()
                if let ticket = call.ticket, ticket.stream.isStale(ticket) {
                    heard.append((call, .lost))
                } else if Int.random(in: 0..<100, using: &random) < 4 {
                    call.ticket?.stream.notRecorded(call.number)
                    heard.append((call, .lost))
                } else {
                    recorded.append(call)
                    heard.append((call, .recorded))
                }
            } else if !heard.isEmpty {
                // A caller hears its outcome, in any order.
                let (call, outcome) = heard.remove(at: Int.random(in: 0..<heard.count, using: &random))
                switch outcome {
                case .recorded: rating.recorded(call.number)
                case .lost:
                    rating.notRecorded(call.number)
                    toPriceAgain.append(call.event)
                }
            }
        }
        let sum = try recorded.reduce(Money.zero) { try $0.adding($1.price) }
        let replay = PlanRating(plan: plan)
        for call in recorded { try replay.rate(call.event) }
        #expect(recorded.count > 300, "enough calls recorded to mean something")
        #expect(sum == replay.total)
    }
}
