import TollgateCore

/// Ascending tiers of a count: `[{"upTo": 1000, <value>}, {"upTo": 10000, <value>}, {<value>}]`. Each tier
/// covers the units after the previous tier's `upTo` up to and including its own; the last has no `upTo`
/// and covers everything beyond, so every count falls in exactly one tier. Used by `graduated`, `volume`
/// and the `volume_discount` modifier.
public struct Tiers<Value: Sendable & Hashable>: Sendable, Hashable {
    public struct Tier: Sendable, Hashable {
        /// Inclusive upper bound; nil for the last tier.
        public var upTo: Int64?
        public var value: Value
    }

    public let tiers: [Tier]
    public static var countMax: Int { 100 }

    /// Reads `document[key]`; each tier's value is read from the tier object by `read`.
    public init(
        _ document: ChargeDocument, key: String, valueKeys: [String],
        _ read: (ChargeDocument) throws(PlanValidationError) -> Value
    ) throws(PlanValidationError) {
        guard case .array(let items)? = document.object[key], !items.isEmpty else {
            throw document.error(key, "a non-empty array of tiers")
        }
        guard items.count <= Self.countMax else { throw document.error(key, "at most \(Self.countMax) tiers") }
        var tiers: [Tier] = []
        for (index, item) in items.enumerated() {
            let path = document.field("\(key)[\(index)]")
            guard let object = item.objectValue else { throw PlanValidationError(field: path, rule: "an object") }
            let tier = ChargeDocument(object: object, path: path, currency: document.currency)
            try tier.allowOnly(["upTo"] + valueKeys, kind: "tier")
            let isLast = index == items.count - 1
            var upTo: Int64?
            if let bound = object["upTo"] {
                guard !isLast else {
                    throw tier.error("upTo", "absent on the last tier, which covers everything beyond the one before")
                }
                let value = try ChargeDocument.count(bound, field: tier.field("upTo"), minimum: 1)
                if let previous = tiers.last?.upTo, value <= previous {
                    throw tier.error(
                        "upTo", "greater than the previous tier's upTo (\(previous)): tiers must not overlap")
                }
                upTo = value
            } else if !isLast {
                throw tier.error("upTo", "required on every tier but the last")
            }
            tiers.append(Tier(upTo: upTo, value: try read(tier)))
        }
        self.tiers = tiers
    }

    /// The index of the tier that `count` falls in. Inlinable so that the plug-ins get it specialised for
    /// their tier values: rating is on every call's path.
    @inlinable
    public func index(of count: Int64) -> Int {
        var index = 0
        while index < tiers.count - 1, let upTo = tiers[index].upTo, count > upTo { index += 1 }
        return index
    }
}
