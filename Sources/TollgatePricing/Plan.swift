import TollgateCore
import TollgateJSON

/// A validated, immutable version of a rate plan: its document as the operator wrote it, and the strategies
/// built from its charges. Putting a plan with the same name again makes the next version; a version never changes.
/// Rating happens in a `PlanRating`, which holds one subscription's running totals for one period.
public struct Plan: Sendable {
    public var id: String
    public var name: String
    public var version: Int
    public var currency: String
    /// The document exactly as validated, for `plans.get` and for rebuilding after a restart.
    public var document: PlanDocument
    public var charges: [any PricingStrategy]
    public var modifiers: Modifiers

    /// The custom metrics the plan declares (`metrics`): event types `events.ingest` accepts beside the built-in
    /// ones, each rated as `quantity` units of a tool named for the metric.
    public var metrics: [String] { document.metrics }

    /// Whether a call's price can depend on the calls before it: a charge that does, or any modifier (both
    /// read the period's running counts).
    public var pricesDependOnEarlierEvents: Bool {
        !modifiers.isEmpty || charges.contains { $0.pricesDependOnEarlierEvents }
    }

    /// Whether a charge divides what it includes among named agents: invoice lines are then per agent too.
    public var allocatesPerAgent: Bool { charges.contains { $0.allocatesPerAgent } }
}

/// A plan as written: `{name, currency, charges:[{strategy, …}], modifiers?:[…]}`.
public struct PlanDocument: Sendable, Hashable {
    public var name: String
    public var currency: String
    public var charges: [JSONValue]
    public var modifiers: [JSONValue]?
    /// Whether the operator accepts events priced below zero (credits), which volume tiers with falling rates
    /// and both modifiers can produce. Without it such a plan is refused.
    public var creditsAllowed: Bool
    /// Custom metrics: event types `events.ingest` accepts for customers on this plan (`Plan.metrics`).
    public var metrics: [String]

    public init(
        name: String, currency: String, charges: [JSONValue], modifiers: [JSONValue]? = nil,
        creditsAllowed: Bool = false, metrics: [String] = []
    ) {
        self.name = name
        self.currency = currency
        self.charges = charges
        self.modifiers = modifiers
        self.creditsAllowed = creditsAllowed
        self.metrics = metrics
    }

    public static let nameLengthMax = 128
    public static let chargesMax = 64
    public static let metricsMax = 64
    /// The event types of `events.ingest` itself, which a metric may not be named.
    public static let builtInEventTypes: Set<String> = ["tool_invocation", "token_consumption", "session"]

    /// Validates the whole document and builds its strategies; the first broken rule is thrown.
    public func compile(id: String, version: Int, registry: StrategyRegistry) throws(PlanValidationError) -> Plan {
        guard !name.isEmpty, name.count <= Self.nameLengthMax else {
            throw PlanValidationError(field: "name", rule: "1 to \(Self.nameLengthMax) characters")
        }
        guard Currency.isValidCode(currency) else {
            throw PlanValidationError(field: "currency", rule: "an ISO 4217 code of three upper-case letters")
        }
        guard !charges.isEmpty else { throw PlanValidationError(field: "charges", rule: "at least one charge") }
        guard metrics.count <= Self.metricsMax, Set(metrics).count == metrics.count else {
            throw PlanValidationError(field: "metrics", rule: "at most \(Self.metricsMax) names, each once")
        }
        for (index, metric) in metrics.enumerated() {
            guard !metric.isEmpty, metric.utf8.count <= 64,
                metric.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }),
                !Self.builtInEventTypes.contains(metric)
            else {
                throw PlanValidationError(
                    field: "metrics[\(index)]",
                    rule: "1 to 64 of a-z, 0-9 and _, and not tool_invocation, token_consumption or session")
            }
        }
        guard charges.count <= Self.chargesMax else {
            throw PlanValidationError(field: "charges", rule: "at most \(Self.chargesMax) charges")
        }
        let modifiers = try Modifiers(self.modifiers ?? [], currency: currency)
        if modifiers.mayCredit && !creditsAllowed {
            throw PlanValidationError(
                field: "creditsAllowed", rule: "true: this plan's modifiers can price an event below zero (a credit)")
        }
        var built: [any PricingStrategy] = []
        for (index, charge) in charges.enumerated() {
            let field = "charges[\(index)]"
            guard let object = charge.objectValue else { throw PlanValidationError(field: field, rule: "an object") }
            guard let name = object["strategy"]?.stringValue else {
                throw PlanValidationError(field: "\(field).strategy", rule: "a strategy name")
            }
            guard let strategy = registry.strategy(named: name) else {
                throw PlanValidationError(
                    field: "\(field).strategy",
                    rule: "one of: \(registry.names.joined(separator: ", "))")
            }
            let charge = try strategy.init(charge: ChargeDocument(object: object, path: field, currency: currency))
            if charge.mayCredit && !creditsAllowed {
                throw PlanValidationError(
                    field: "creditsAllowed",
                    rule: "true: \(field) (\(name)) can price an event below zero (a credit)")
            }
            built.append(charge)
        }
        return Plan(
            id: id, name: name, version: version, currency: currency, document: self, charges: built,
            modifiers: modifiers)
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
        let fields = ["name", "currency", "charges", "modifiers", "creditsAllowed", "metrics"]
        for key in object.keys.sorted() where !fields.contains(key) {
            throw PlanValidationError(field: key, rule: "not a plan field (\(fields.joined(separator: ", ")))")
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
        var creditsAllowed = false
        switch object["creditsAllowed"] {
        case nil: break
        case .bool(let value)?: creditsAllowed = value
        default: throw PlanValidationError(field: "creditsAllowed", rule: "true or false")
        }
        var metrics: [String] = []
        switch object["metrics"] {
        case nil, .null?: break
        case .array(let items)?:
            for (index, item) in items.enumerated() {
                guard let metric = item.stringValue else {
                    throw PlanValidationError(field: "metrics[\(index)]", rule: "a string")
                }
                metrics.append(metric)
            }
        default: throw PlanValidationError(field: "metrics", rule: "an array of metric names")
        }
        self.init(
            name: name, currency: currency, charges: charges, modifiers: modifiers, creditsAllowed: creditsAllowed,
            metrics: metrics)
    }

    /// The document as canonical JSON: how it is stored and shown.
    public var json: JSONValue {
        var object: [String: JSONValue] = [
            "name": .string(name), "currency": .string(currency), "charges": .array(charges),
        ]
        if let modifiers { object["modifiers"] = .array(modifiers) }
        if creditsAllowed { object["creditsAllowed"] = .bool(true) }
        if !metrics.isEmpty { object["metrics"] = .array(metrics.map(JSONValue.string)) }
        return .object(object)
    }
}
