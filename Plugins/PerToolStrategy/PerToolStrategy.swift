import TollgateCore
import TollgatePricing

/// `per_tool`: a rate per call of each named tool, with `*` as the rate of every other tool.
///
/// ```json
/// {"strategy":"per_tool","rates":{"search":"0.001","transform":"0.25","*":"0.002"}}
/// ```
/// A call's price is its tool's rate × its `quantity`. The `*` rate is required, so that no tool is ever
/// free by omission; a tool meant to be free says `"0"` explicitly.
public struct PerToolStrategy: PerEventStrategy {
    public static let name = "per_tool"

    public let rates: [String: Money]
    public let defaultRate: Money

    public init(charge: ChargeDocument) throws(PlanValidationError) {
        try charge.allowOnly(["strategy", "rates"], kind: "per_tool")
        var rates = try charge.table("rates") { value, field throws(PlanValidationError) in
            try ChargeDocument.amount(value, field: field)
        }
        guard let defaultRate = rates.removeValue(forKey: "*") else {
            throw charge.error("rates.*", "a default rate for tools not listed")
        }
        self.rates = rates
        self.defaultRate = defaultRate
    }

    public func price(of event: RatedEvent) throws(MoneyError) -> Money {
        try (rates[event.tool] ?? defaultRate).multiplied(by: event.quantity)
    }
}
