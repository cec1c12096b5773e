import Foundation
import TollgateCore
import TollgateJSON
import TollgatePricing
import TollgateStrategies

/// The cost of rating one event, per strategy and modifier: `quote` (what the server calls before the cap
/// check) plus `apply` (folding the accepted call into the running totals), against a state that already
/// holds a month of events.
///
///     swift run -c release TollgateRatingBench [--events 1000000]
@main
struct RatingBench {
    static let plans: [(String, String)] = [
        (
            "per_tool",
            #"{"strategy":"per_tool","rates":{"search":"0.001","transform":"0.25","lookup":"0.0001","*":"0.002"}}"#
        ),
        (
            "token_multiplier",
            #"{"strategy":"token_multiplier","rates":{"input":"0.0000005","output":"0.000002"},"#
                + #""multipliers":{"search":"0.5","transform":"3.5"}}"#
        ),
        (
            "duration_buckets",
            #"{"strategy":"duration_buckets","buckets":[{"upTo":60000,"rate":"0.10"},{"upTo":300000,"rate":"0.50"},"#
                + #"{"rate":"2.00"}]}"#
        ),
        ("cost_plus", #"{"strategy":"cost_plus","markup":"1.25"}"#),
        (
            "graduated",
            #"{"strategy":"graduated","tiers":[{"upTo":1000,"rate":"0.01"},{"upTo":100000,"rate":"0.008"},"#
                + #"{"upTo":1000000,"rate":"0.006"},{"rate":"0.005"}]}"#
        ),
        (
            "volume",
            #"{"strategy":"volume","tiers":[{"upTo":9999,"rate":"0.10"},{"upTo":99999,"rate":"0.08"},{"rate":"0.05"}]}"#
        ),
        ("session_bundle", #"{"strategy":"session_bundle","fee":"5","includedCalls":100,"overageRate":"0.05"}"#),
        (
            "committed",
            #"{"strategy":"committed","amount":"10000","includedCalls":1000000,"overageRate":"0.01","#
                + #""allocations":{"agt_0":300000,"agt_1":500000,"*":200000}}"#
        ),
        (
            "per_tool + error_rate_penalty",
            #"{"strategy":"per_tool","rates":{"*":"0.01"}}],"modifiers":[{"type":"error_rate_penalty","#
                + #""threshold":"0.05","multiplier":"1.5"}"#
        ),
        (
            "per_tool + volume_discount",
            #"{"strategy":"per_tool","rates":{"*":"0.01"}}],"modifiers":[{"type":"volume_discount","#
                + #""tiers":[{"upTo":999,"percent":"0"},{"upTo":9999,"percent":"10"},{"percent":"25"}]}"#
        ),
    ]

    static func main() throws {
        var count = 1_000_000
        var arguments = CommandLine.arguments.dropFirst()
        while let flag = arguments.popFirst() {
            guard flag == "--events", let value = arguments.popFirst(), let number = Int(value), number > 0 else {
                print("usage: TollgateRatingBench [--events N]")
                exit(64)
            }
            count = number
        }
        // A month's worth of varied calls: 4 tools, 20 agents, 10,000 sessions, some failures.
        var generator = SystemRandomNumberGenerator()
        let tools = ["search", "transform", "lookup", "other"]
        let events = (0..<count).map { index in
            RatedEvent(
                tool: tools[index % 4], quantity: 1, inputTokens: Int64.random(in: 0...4000, using: &generator),
                outputTokens: Int64.random(in: 0...800, using: &generator),
                durationMs: Int64.random(in: 0...400_000, using: &generator),
                providerCost: Money(nanos: Int64.random(in: 0...3_000_000, using: &generator)),
                agentId: "agt_\(index % 20)", sessionId: "ses_\(index % 10_000)",
                status: index % 17 == 0 ? "FAILED" : nil)
        }
        print("rating \(count) events per plan (quote + apply, release build)")
        for (name, charge) in plans {
            let credits = name.contains("+") || name == "volume"
            let json = #"{"name":"bench","currency":"USD","creditsAllowed":\#(credits),"charges":[\#(charge)]}"#
            let plan = try PlanDocument(json: JSONCodec.parse(json)).compile(
                id: "plan_bench", version: 1, registry: .builtIn)
            let rating = PlanRating(plan: plan)
            let start = ContinuousClock.now
            for event in events {
                let quote = try rating.quote(event)
                try rating.apply(event, quote: quote)
            }
            let elapsed = ContinuousClock.now - start
            let nanos = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
            let padded = name.padding(toLength: 30, withPad: " ", startingAt: 0)
            let perEvent = String(format: "%7.0f", nanos / Double(count))
            print("\(padded) \(perEvent) ns/event   total \(rating.total.decimalString) USD")
        }
    }
}
