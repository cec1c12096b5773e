import TollgateCore
import TollgatePricing

/// `duration_buckets`: a rate per call by how long the call ran (`usage.durationMs`).
///
/// ```json
/// {"strategy":"duration_buckets",
///  "buckets":[{"upTo":60000,"rate":"0.10"},{"upTo":300000,"rate":"0.50"},{"rate":"2.00"}]}
/// ```
/// Buckets are tiers of milliseconds (`upTo` inclusive); the last is open so every duration has a price.
/// A call's price is its bucket's rate × its `quantity`.
public struct DurationBucketsStrategy: PerEventStrategy {
    public static let name = "duration_buckets"
    public let buckets: Tiers<Money>

    public init(charge: ChargeDocument) throws(PlanValidationError) {
        try charge.allowOnly(["strategy", "buckets"], kind: "duration_buckets")
        buckets = try Tiers(charge, key: "buckets", valueKeys: ["rate"]) { tier throws(PlanValidationError) in
            try tier.amount("rate")
        }
    }

    public func price(of event: RatedEvent) throws(MoneyError) -> Money {
        try buckets.tiers[buckets.index(of: event.durationMs)].value.multiplied(by: event.quantity)
    }
}
