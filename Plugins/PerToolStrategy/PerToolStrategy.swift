import TollgateCore
import TollgatePricing

/// `per_tool`: a rate per call of each named tool, with `*` as the rate of every other tool.
///
/// ```json
/// {"strategy":"per_tool","rates":{"search":"0.001","transform":"0.25","*":"0.002"}}
/// ```
/// A call's price is its tool's rate × its `quantity`. The `*` rate is required, so that no tool is ever
/// free by omission; a tool meant to be free says `"0"` explicitly.
public struct PerToolStrategy: PricingStrategy {
    public static let name = "per_tool"
    public static let ratesMax = 10_000

    public let rates: [String: Money]
    public let defaultRate: Money

    public init(charge: [String: JSONValue], currency: String, field: String) throws(PlanValidationError) {
        for key in charge.keys where key != "strategy" && key != "rates" {
            throw PlanValidationError(field: "\(field).\(key)", rule: "not a per_tool field (strategy, rates)")
        }
        guard let table = charge["rates"]?.objectValue else {
            throw PlanValidationError(field: "\(field).rates", rule: "an object of tool name to decimal rate")
        }
        guard table.count <= Self.ratesMax else {
            throw PlanValidationError(field: "\(field).rates", rule: "at most \(Self.ratesMax) tools")
        }
        var rates: [String: Money] = [:]
        for (tool, value) in table {
            let path = "\(field).rates.\(tool)"
            guard !tool.isEmpty else { throw PlanValidationError(field: path, rule: "a non-empty tool name") }
            guard let text = value.stringValue, let rate = try? Money(decimal: text) else {
                throw PlanValidationError(field: path, rule: "a decimal string with at most 9 fractional digits")
            }
            guard rate >= .zero else { throw PlanValidationError(field: path, rule: "not negative") }
            rates[tool] = rate
        }
        guard let defaultRate = rates.removeValue(forKey: "*") else {
            throw PlanValidationError(field: "\(field).rates.*", rule: "a default rate for tools not listed")
        }
        self.rates = rates
        self.defaultRate = defaultRate
    }

    public func price(of event: RatedEvent) throws(MoneyError) -> Money {
        try (rates[event.tool] ?? defaultRate).multiplied(by: event.quantity)
    }
}
