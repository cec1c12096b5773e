import Testing
import TollgateCore
import TollgatePricing

/// Properties every strategy and modifier must have, over random event sequences (seeded, so a failure
/// reproduces): the marginal prices of a period add up to exactly the price of its total; that total does
/// not depend on the order of the events or on how a call's quantity is split; and no event is priced below
/// zero unless the plan allows credits.
@Suite struct MarginalRatingPropertyTests {
    static let plans: [(name: String, charge: String, modifiers: String?, credits: Bool)] = [
        ("per_tool", #"{"strategy":"per_tool","rates":{"a":"0.001","b":"0.25","*":"0.000000003"}}"#, nil, false),
        (
            "token_multiplier",
            #"{"strategy":"token_multiplier","rates":{"input":"0.000000001","output":"0.000000007","#
                + #""reasoning":"0.000000011"},"multipliers":{"a":"0.333333333","b":"3.5","*":"1.000000001"}}"#,
            nil, false
        ),
        (
            "duration_buckets",
            #"{"strategy":"duration_buckets","buckets":[{"upTo":1000,"rate":"0.01"},{"upTo":60000,"rate":"0.1"},"#
                + #"{"rate":"1"}]}"#,
            nil, false
        ),
        ("cost_plus", #"{"strategy":"cost_plus","markup":"1.333333333"}"#, nil, false),
        (
            "graduated calls",
            #"{"strategy":"graduated","tiers":[{"upTo":7,"rate":"0.3"},{"upTo":40,"rate":"0.2"},"#
                + #"{"rate":"0.000000001"}]}"#,
            nil, false
        ),
        (
            "graduated tokens",
            #"{"strategy":"graduated","metric":"input_tokens","tiers":[{"upTo":5000,"rate":"0.000001"},"#
                + #"{"rate":"0.0000005"}]}"#,
            nil, false
        ),
        (
            "volume falling",
            #"{"strategy":"volume","tiers":[{"upTo":10,"rate":"0.5"},{"upTo":30,"rate":"0.3"},{"rate":"0.1"}]}"#, nil,
            true
        ),
        ("volume rising", #"{"strategy":"volume","tiers":[{"upTo":10,"rate":"0.1"},{"rate":"0.2"}]}"#, nil, false),
        (
            "session_bundle", #"{"strategy":"session_bundle","fee":"5","includedCalls":4,"overageRate":"0.05"}"#, nil,
            false
        ),
        (
            "committed",
            #"{"strategy":"committed","amount":"100","includedCalls":30,"overageRate":"7","allocations":{"agt_1":10,"#
                + #""agt_2":5,"*":6}}"#,
            nil, false
        ),
        (
            "volume_discount", #"{"strategy":"per_tool","rates":{"*":"0.7"}}"#,
            #"{"type":"volume_discount","tiers":[{"upTo":5,"percent":"0"},{"upTo":20,"percent":"12.5"},"#
                + #"{"percent":"33.333"}]}"#,
            true
        ),
        (
            "error_rate_penalty", #"{"strategy":"graduated","tiers":[{"upTo":10,"rate":"0.3"},{"rate":"0.1"}]}"#,
            #"{"type":"error_rate_penalty","threshold":"0.25","multiplier":"1.7","scope":"period"}"#, true
        ),
        (
            "error_rate_penalty per session", #"{"strategy":"per_tool","rates":{"*":"0.3"}}"#,
            #"{"type":"error_rate_penalty","threshold":"0.1","multiplier":"2.25"}"#, true
        ),
    ]

    @Test(arguments: plans.indices)
    func marginalPricesSumToTheTotal_inAnyOrderAndBatching(_ index: Int) throws {
        let spec = Self.plans[index]
        let plan = try plan(spec.charge, modifiers: spec.modifiers, creditsAllowed: spec.credits)
        var random = SplitMix64(seed: UInt64(index) &* 7919 &+ 1)
        var sawCredit = false
        for _ in 0..<150 {
            let events = (0..<Int.random(in: 1...40, using: &random)).map { _ in Self.randomEvent(&random) }
            let rating = PlanRating(plan: plan)
            var sum = Money.zero
            for event in events {
                let price = try rating.rate(event)
                if price < .zero {
                    sawCredit = true
                    #expect(spec.credits, "\(spec.name): an event priced \(price) in a plan without credits")
                }
                sum = try sum.adding(price)
            }
            #expect(sum == rating.total, "\(spec.name): marginals add to \(sum), total is \(rating.total)")

            let shuffled = PlanRating(plan: plan)
            for event in events.shuffled(using: &random) { try shuffled.rate(event) }
            #expect(shuffled.total == rating.total, "\(spec.name): order changed the total")

            // The same calls, each split into calls of quantity 1 (tokens, duration and cost on the first).
            let split = PlanRating(plan: plan)
            for event in events {
                for piece in 0..<event.quantity {
                    var part = event
                    part.quantity = 1
                    if piece > 0 {
                        part.inputTokens = 0
                        part.outputTokens = 0
                        part.reasoningTokens = 0
                        part.providerCost = .zero
                    }
                    try split.rate(part)
                }
            }
            #expect(split.total == rating.total, "\(spec.name): splitting calls changed the total")
        }
        if spec.credits && spec.name != "error_rate_penalty per session" {
            #expect(sawCredit, "\(spec.name): random sequences should have produced a credit")
        }
    }

    static func randomEvent(_ random: inout SplitMix64) -> RatedEvent {
        RatedEvent(
            tool: ["a", "b", "c"].randomElement(using: &random)!,
            quantity: Int64.random(in: 1...6, using: &random),
            inputTokens: Int64.random(in: 0...4000, using: &random),
            outputTokens: Int64.random(in: 0...900, using: &random),
            reasoningTokens: Int64.random(in: 0...300, using: &random),
            durationMs: Int64.random(in: 0...90_000, using: &random),
            providerCost: Money(nanos: Int64.random(in: 0...5_000_000, using: &random)),
            agentId: ["agt_1", "agt_2", "agt_3"].randomElement(using: &random)!,
            sessionId: ["s1", "s2", "s3", "s4"].randomElement(using: &random)!,
            status: Int.random(in: 0..<4, using: &random) == 0 ? "FAILED" : nil)
    }
}
