import TollgateCore
import TollgatePricing

/// `token_multiplier`: tokens at a rate each, scaled by how much reasoning the tool needs.
///
/// ```json
/// {"strategy":"token_multiplier","rates":{"input":"0.0000005","output":"0.000002"},
///  "multipliers":{"simple_lookup":"0.5","schema_analysis":"2.0","*":"1"}}
/// ```
/// price = (input × rates.input + output × rates.output + reasoning × rates.reasoning) × multipliers[tool].
/// A token kind without a rate costs nothing; a tool without a multiplier takes `*`, or 1 when `*` is absent.
/// The sum is kept exact and rounded once, so fractions of a nano-unit are never lost between calls.
public struct TokenMultiplierStrategy: ExactSumStrategy {
    public static let name = "token_multiplier"
    static let kinds = ["input", "output", "reasoning"]

    public let input: Money, output: Money, reasoning: Money
    public let multipliers: [String: Factor]
    public let defaultMultiplier: Factor

    public init(charge: ChargeDocument) throws(PlanValidationError) {
        try charge.allowOnly(["strategy", "rates", "multipliers"], kind: "token_multiplier")
        let rates = try charge.table("rates", countMax: 3) { value, field throws(PlanValidationError) in
            try ChargeDocument.amount(value, field: field)
        }
        for kind in rates.keys.sorted() where !Self.kinds.contains(kind) {
            throw charge.error("rates.\(kind)", "one of: \(Self.kinds.joined(separator: ", "))")
        }
        guard !rates.isEmpty else { throw charge.error("rates", "at least one of: input, output, reasoning") }
        input = rates["input"] ?? .zero
        output = rates["output"] ?? .zero
        reasoning = rates["reasoning"] ?? .zero
        var multipliers: [String: Factor] = [:]
        if charge.object["multipliers"] != nil {
            multipliers = try charge.table("multipliers") { value, field throws(PlanValidationError) in
                try ChargeDocument.factor(value, field: field)
            }
        }
        defaultMultiplier = multipliers.removeValue(forKey: "*") ?? .one
        self.multipliers = multipliers
    }

    public func amount(of event: RatedEvent) throws(MoneyError) -> ExactAmount {
        let tokens = try input.multiplied(by: event.inputTokens)
            .adding(try output.multiplied(by: event.outputTokens))
            .adding(try reasoning.multiplied(by: event.reasoningTokens))
        return try ExactAmount(tokens, times: multipliers[event.tool] ?? defaultMultiplier)
    }
}
