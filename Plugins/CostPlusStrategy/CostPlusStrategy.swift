import TollgateCore
import TollgatePricing

/// `cost_plus`: what the call cost the provider (`usage.providerCost`), times a markup.
///
/// ```json
/// {"strategy":"cost_plus","markup":"1.25"}
/// ```
/// The marked-up sum is kept exact and rounded once, so a period's total is its provider cost × markup.
public struct CostPlusStrategy: ExactSumStrategy {
    public static let name = "cost_plus"
    public let markup: Factor

    public init(charge: ChargeDocument) throws(PlanValidationError) {
        try charge.allowOnly(["strategy", "markup"], kind: "cost_plus")
        markup = try charge.factor("markup")
    }

    public func amount(of event: RatedEvent) throws(MoneyError) -> ExactAmount {
        try ExactAmount(event.providerCost, times: markup)
    }
}
