import TollgateCore
import TollgatePricing

/// `volume`: every unit of the period is priced at the rate of the tier the period's count has reached.
///
/// ```json
/// {"strategy":"volume","metric":"calls",
///  "tiers":[{"upTo":9999,"rate":"0.10"},{"upTo":99999,"rate":"0.08"},{"rate":"0.05"}]}
/// ```
/// With these tiers 9,999 calls cost 999.90 and 10,000 calls cost 800.00: the call that reaches a cheaper
/// tier lowers the price of the whole period, so it carries a credit. A plan whose tiers can do that (a rate
/// falls enough at a boundary) must say `"creditsAllowed": true`; tiers whose total never falls need not.
public struct VolumeStrategy: UnitCountStrategy {
    public static let name = "volume"
    public let metric: Metric
    public let tiers: Tiers<Money>
    public let mayCredit: Bool

    public init(charge: ChargeDocument) throws(PlanValidationError) {
        try charge.allowOnly(["strategy", "metric", "tiers"], kind: "volume")
        metric = try charge.metric(allowed: Metric.allCases, default: .calls)
        tiers = try Tiers(charge, key: "tiers", valueKeys: ["rate"]) { tier throws(PlanValidationError) in
            try tier.amount("rate")
        }
        // The total falls at boundary b when (b + 1) × next rate < b × rate.
        var falls = false
        for (tier, next) in zip(tiers.tiers, tiers.tiers.dropFirst()) {
            let bound = Int128(tier.upTo!)
            if (bound + 1) * Int128(next.value.nanos) < bound * Int128(tier.value.nanos) { falls = true }
        }
        mayCredit = falls
    }

    public func price(units: Int64) throws(MoneyError) -> Money {
        try tiers.tiers[tiers.index(of: units)].value.multiplied(by: units)
    }
}
