import TollgateCore
import TollgateJSON

/// One charge (or modifier) object of a plan document, with readers that name the exact field and rule when
/// a value is wrong. Every strategy reads its fields through these, so every plan error reads the same way.
public struct ChargeDocument: Sendable {
    public let object: [String: JSONValue]
    /// The object's path in the plan (`charges[2]`).
    public let path: String
    public let currency: String

    public init(object: [String: JSONValue], path: String, currency: String) {
        self.object = object
        self.path = path
        self.currency = currency
    }

    public func field(_ key: String) -> String { "\(path).\(key)" }

    public func error(_ key: String, _ rule: String) -> PlanValidationError {
        PlanValidationError(field: field(key), rule: rule)
    }

    /// Refuses any key not in `allowed` (a typo must not silently drop a price).
    public func allowOnly(_ allowed: [String], kind: String) throws(PlanValidationError) {
        for key in object.keys.sorted() where !allowed.contains(key) {
            throw error(key, "not a \(kind) field (\(allowed.joined(separator: ", ")))")
        }
    }

    /// A non-negative money amount written as a decimal string.
    public func amount(_ key: String) throws(PlanValidationError) -> Money {
        guard let value = object[key] else { throw error(key, "required: a decimal string") }
        return try Self.amount(value, field: field(key))
    }

    public static func amount(_ value: JSONValue, field: String) throws(PlanValidationError) -> Money {
        guard let text = value.stringValue, let amount = try? Money(decimal: text) else {
            throw PlanValidationError(field: field, rule: "a decimal string with at most 9 fractional digits")
        }
        guard amount >= .zero else { throw PlanValidationError(field: field, rule: "not negative") }
        return amount
    }

    /// A non-negative decimal factor; `nil` when absent and `default` is nil.
    public func factor(_ key: String, default fallback: Factor? = nil) throws(PlanValidationError) -> Factor {
        guard let value = object[key] else {
            if let fallback { return fallback }
            throw error(key, "required: a decimal string")
        }
        return try Self.factor(value, field: field(key))
    }

    public static func factor(_ value: JSONValue, field: String) throws(PlanValidationError) -> Factor {
        guard let text = value.stringValue, let factor = try? Factor(decimal: text) else {
            throw PlanValidationError(field: field, rule: "a decimal string with at most 9 fractional digits")
        }
        guard factor.billionths >= 0 else { throw PlanValidationError(field: field, rule: "not negative") }
        return factor
    }

    /// A whole count ≥ `minimum`.
    public func count(_ key: String, minimum: Int64 = 0) throws(PlanValidationError) -> Int64 {
        guard let value = object[key] else { throw error(key, "required: a whole number") }
        return try Self.count(value, field: field(key), minimum: minimum)
    }

    public static func count(_ value: JSONValue, field: String, minimum: Int64 = 0) throws(PlanValidationError) -> Int64
    {
        guard let number = value.int64Value else { throw PlanValidationError(field: field, rule: "a whole number") }
        guard number >= minimum else { throw PlanValidationError(field: field, rule: "at least \(minimum)") }
        return number
    }

    /// A table of name → value with a bounded size, each value read by `read`.
    public func table<Value>(
        _ key: String, countMax: Int = 10_000,
        _ read: (JSONValue, String) throws(PlanValidationError) -> Value
    )
        throws(PlanValidationError) -> [String: Value]
    {
        guard let table = object[key]?.objectValue else { throw error(key, "an object of name to value") }
        guard table.count <= countMax else { throw error(key, "at most \(countMax) entries") }
        var result: [String: Value] = [:]
        for (name, value) in table {
            guard !name.isEmpty else { throw error("\(key).\(name)", "a non-empty name") }
            result[name] = try read(value, field("\(key).\(name)"))
        }
        return result
    }

    /// The metric a charge counts, from `allowed`, or `fallback` when the charge does not say.
    public func metric(allowed: [Metric], default fallback: Metric) throws(PlanValidationError) -> Metric {
        guard let value = object["metric"] else { return fallback }
        guard let name = value.stringValue, let metric = Metric(rawValue: name), allowed.contains(metric) else {
            throw error("metric", "one of: \(allowed.map(\.rawValue).joined(separator: ", "))")
        }
        return metric
    }
}
