import TollgateCore
import TollgateJSON

/// `error_rate_penalty`: a multiplier on the price of a session (or of the whole period) whose share of
/// failed calls is above a threshold.
///
/// ```json
/// {"type":"error_rate_penalty","threshold":"0.05","multiplier":"1.5","scope":"session"}
/// ```
/// A call is failed when its `status` is present and not `SUCCESS`. The share is failed calls ÷ calls, and
/// the penalty applies when it is strictly above `threshold`, to everything the scope has cost so far. As
/// calls succeed again the share can fall back under the threshold and the penalty goes away: a credit, so a
/// plan with this modifier must say `"creditsAllowed": true`.
public struct ErrorRatePenalty: Sendable, Hashable {
    public enum Scope: String, Sendable { case session, period }
    public var threshold: Factor
    public var multiplier: Factor
    public var scope: Scope

    init(_ document: ChargeDocument) throws(PlanValidationError) {
        try document.allowOnly(["type", "threshold", "multiplier", "scope"], kind: "error_rate_penalty")
        threshold = try document.factor("threshold")
        guard threshold <= .one else { throw document.error("threshold", "a share between 0 and 1") }
        multiplier = try document.factor("multiplier")
        switch document.object["scope"] {
        case nil: scope = .session
        case .string(let name)?:
            guard let parsed = Scope(rawValue: name) else { throw document.error("scope", "session or period") }
            scope = parsed
        default: throw document.error("scope", "session or period")
        }
    }

    /// The factor for a scope with `errors` failed calls out of `calls`.
    func factor(errors: Int64, calls: Int64) -> Factor {
        guard calls > 0 else { return .one }
        // errors / calls > threshold, without division.
        return Int128(errors) * 1_000_000_000 > Int128(threshold.billionths) * Int128(calls) ? multiplier : .one
    }
}

/// `volume_discount`: a percentage off the period's whole price, by the tier the period's count has reached.
///
/// ```json
/// {"type":"volume_discount","metric":"calls",
///  "tiers":[{"upTo":999,"percent":"0"},{"upTo":9999,"percent":"10"},{"percent":"25"}]}
/// ```
/// The discount is retroactive: reaching a tier lowers the price of every call of the period, so the call
/// that crosses it carries a credit and a plan with this modifier must say `"creditsAllowed": true`.
public struct VolumeDiscount: Sendable, Hashable {
    public var metric: Metric
    /// The factor each tier leaves to pay (`1 − percent/100`).
    public var tiers: Tiers<Factor>

    init(_ document: ChargeDocument) throws(PlanValidationError) {
        try document.allowOnly(["type", "metric", "tiers"], kind: "volume_discount")
        metric = try document.metric(allowed: Metric.allCases, default: .calls)
        tiers = try Tiers(document, key: "tiers", valueKeys: ["percent"]) { tier throws(PlanValidationError) in
            let percent = try tier.factor("percent")
            guard percent.billionths <= 100_000_000_000 else { throw tier.error("percent", "between 0 and 100") }
            guard percent.billionths % 100 == 0 else { throw tier.error("percent", "at most 7 fractional digits") }
            return Factor(billionths: 1_000_000_000 - percent.billionths / 100)
        }
    }

    func factor(units: Int64) -> Factor { tiers.tiers[tiers.index(of: units)].value }
}

/// The modifiers of a plan; at most one of each kind.
public struct Modifiers: Sendable, Hashable {
    public var errorRatePenalty: ErrorRatePenalty?
    public var volumeDiscount: VolumeDiscount?

    public var isEmpty: Bool { errorRatePenalty == nil && volumeDiscount == nil }
    public var mayCredit: Bool { !isEmpty }

    public static let kinds = ["error_rate_penalty", "volume_discount"]

    init(_ items: [JSONValue], currency: String) throws(PlanValidationError) {
        for (index, item) in items.enumerated() {
            let path = "modifiers[\(index)]"
            guard let object = item.objectValue else { throw PlanValidationError(field: path, rule: "an object") }
            let document = ChargeDocument(object: object, path: path, currency: currency)
            switch object["type"]?.stringValue {
            case "error_rate_penalty":
                guard errorRatePenalty == nil else { throw document.error("type", "at most one error_rate_penalty") }
                errorRatePenalty = try ErrorRatePenalty(document)
            case "volume_discount":
                guard volumeDiscount == nil else { throw document.error("type", "at most one volume_discount") }
                volumeDiscount = try VolumeDiscount(document)
            default:
                throw document.error("type", "one of: \(Self.kinds.joined(separator: ", "))")
            }
        }
    }
}
