import TollgateCore

/// A validated, immutable version of a rate plan: its document as the operator wrote it, and the strategies
/// built from its charges. Putting a plan with the same name again makes the next version; a version never changes.
public struct Plan: Sendable {
    public var id: String
    public var name: String
    public var version: Int
    public var currency: String
    /// The document exactly as validated, for `plans.get` and for rebuilding after a restart.
    public var document: PlanDocument
    public var charges: [any PricingStrategy]

    /// The price of one event: the sum of every charge's price for it.
    public func price(of event: RatedEvent) throws(MoneyError) -> Money {
        var total = Money.zero
        for charge in charges { total = try total.adding(try charge.price(of: event)) }
        return total
    }
}

/// A plan as written: `{name, currency, charges:[{strategy, …}], modifiers?:[…]}`.
public struct PlanDocument: Sendable, Hashable {
    public var name: String
    public var currency: String
    public var charges: [JSONValue]
    public var modifiers: [JSONValue]?

    public init(name: String, currency: String, charges: [JSONValue], modifiers: [JSONValue]? = nil) {
        self.name = name; self.currency = currency; self.charges = charges; self.modifiers = modifiers
    }

    public static let nameLengthMax = 128
    public static let chargesMax = 64

    /// Validates the whole document and builds its strategies; the first broken rule is thrown.
    public func compile(id: String, version: Int, registry: StrategyRegistry) throws(PlanValidationError) -> Plan {
        guard !name.isEmpty, name.count <= Self.nameLengthMax else {
            throw PlanValidationError(field: "name", rule: "1 to \(Self.nameLengthMax) characters")
        }
        guard Currency.isValidCode(currency) else {
            throw PlanValidationError(field: "currency", rule: "an ISO 4217 code of three upper-case letters")
        }
        guard !charges.isEmpty else { throw PlanValidationError(field: "charges", rule: "at least one charge") }
        guard charges.count <= Self.chargesMax else {
            throw PlanValidationError(field: "charges", rule: "at most \(Self.chargesMax) charges")
        }
        if let modifiers, !modifiers.isEmpty {
            // Modifiers (error_rate_penalty, volume_discount) arrive with the rate-plans work; until then a
            // plan that relies on one is refused rather than silently rated without it.
            throw PlanValidationError(field: "modifiers[0]", rule: "no modifiers are supported by this server yet")
        }
        var built: [any PricingStrategy] = []
        for (index, charge) in charges.enumerated() {
            let field = "charges[\(index)]"
            guard let object = charge.objectValue else { throw PlanValidationError(field: field, rule: "an object") }
            guard let name = object["strategy"]?.stringValue else {
                throw PlanValidationError(field: "\(field).strategy", rule: "a strategy name")
            }
            guard let strategy = registry.strategy(named: name) else {
                throw PlanValidationError(field: "\(field).strategy",
                                          rule: "one of: \(registry.names.joined(separator: ", "))")
            }
            built.append(try strategy.init(charge: object, currency: currency, field: field))
        }
        return Plan(id: id, name: name, version: version, currency: currency, document: self, charges: built)
    }
}

public enum Currency {
    public static func isValidCode(_ code: String) -> Bool {
        code.utf8.count == 3 && code.utf8.allSatisfy { $0 >= 0x41 && $0 <= 0x5A }
    }
}

extension PlanDocument {
    /// Reads a plan document from JSON, naming the first field that has the wrong shape.
    public init(json: JSONValue) throws(PlanValidationError) {
        guard let object = json.objectValue else { throw PlanValidationError(field: "plan", rule: "an object") }
        for key in object.keys where !["name", "currency", "charges", "modifiers"].contains(key) {
            throw PlanValidationError(field: key, rule: "not a plan field (name, currency, charges, modifiers)")
        }
        guard let name = object["name"]?.stringValue else { throw PlanValidationError(field: "name", rule: "a string") }
        guard let currency = object["currency"]?.stringValue else {
            throw PlanValidationError(field: "currency", rule: "a string")
        }
        guard case .array(let charges)? = object["charges"] else {
            throw PlanValidationError(field: "charges", rule: "an array of charges")
        }
        var modifiers: [JSONValue]?
        switch object["modifiers"] {
        case nil, .null?: modifiers = nil
        case .array(let items)?: modifiers = items
        default: throw PlanValidationError(field: "modifiers", rule: "an array of modifiers")
        }
        self.init(name: name, currency: currency, charges: charges, modifiers: modifiers)
    }

    /// The document as canonical JSON: how it is stored and shown.
    public var json: JSONValue {
        var object: [String: JSONValue] = ["name": .string(name), "currency": .string(currency), "charges": .array(charges)]
        if let modifiers { object["modifiers"] = .array(modifiers) }
        return .object(object)
    }
}
