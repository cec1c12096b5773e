import TollgateCore
import TollgateJSON
import TollgatePricing
import TollgateStrategies

func compile(_ json: String) throws -> Plan {
    try PlanDocument(json: JSONCodec.parse(json)).compile(id: "plan_x", version: 1, registry: .builtIn)
}

/// The rule a document breaks, or nil when it compiles.
func validationError(_ json: String) -> PlanValidationError? {
    do {
        _ = try compile(json)
        return nil
    } catch let error as PlanValidationError { return error } catch { return nil }
}

/// A plan with one charge (and optional modifiers) in USD.
func plan(_ charge: String, modifiers: String? = nil, creditsAllowed: Bool = false) throws -> Plan {
    var json = #"{"name":"p","currency":"USD","charges":[\#(charge)]"#
    if let modifiers { json += #","modifiers":[\#(modifiers)]"# }
    if creditsAllowed { json += #","creditsAllowed":true"# }
    return try compile(json + "}")
}

extension Plan {
    /// The price of one event rated alone, against an empty period.
    func price(of event: RatedEvent) throws -> Money { try PlanRating(plan: self).rate(event) }

    /// The marginal prices of `events` rated in order, in one period.
    func prices(of events: [RatedEvent]) throws -> [Money] {
        let rating = PlanRating(plan: self)
        return try events.map { try rating.rate($0) }
    }
}

func usd(_ text: String) throws -> Money { try Money(decimal: text) }
