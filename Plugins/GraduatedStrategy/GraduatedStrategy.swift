import TollgateCore
import TollgatePricing

/// `graduated`: each unit of the period is priced at the rate of the tier it falls in.
///
/// ```json
/// {"strategy":"graduated","metric":"calls",
///  "tiers":[{"upTo":1000,"rate":"0.01"},{"upTo":10000,"rate":"0.008"},{"rate":"0.005"}]}
/// ```
/// With these tiers the 1,000th call of the month costs 0.01 and the 1,001st 0.008. `metric` is what is
/// counted: `calls` (the default, each call's `quantity`), `input_tokens`, `output_tokens`,
/// `reasoning_tokens` or `duration_ms`. Rated marginally: a call that straddles a boundary pays each part at
/// its own tier's rate.
public struct GraduatedStrategy: UnitCountStrategy {
    public static let name = "graduated"
    public let metric: Metric
    public let tiers: Tiers<Money>

    public init(charge: ChargeDocument) throws(PlanValidationError) {
        try charge.allowOnly(["strategy", "metric", "tiers"], kind: "graduated")
        metric = try charge.metric(allowed: Metric.allCases, default: .calls)
        tiers = try Tiers(charge, key: "tiers", valueKeys: ["rate"]) { tier throws(PlanValidationError) in
            try tier.amount("rate")
        }
    }

    public func price(units: Int64) throws(MoneyError) -> Money {
        var sum = Money.zero
        var floor: Int64 = 0
        for tier in tiers.tiers {
            let ceiling = min(units, tier.upTo ?? units)
            if ceiling > floor { sum = try sum.adding(try tier.value.multiplied(by: ceiling - floor)) }
            guard let upTo = tier.upTo, units > upTo else { break }
            floor = upTo
        }
        return sum
    }
}
