import TollgateCore
import TollgateJSON

/// A cap as `caps.set` and `caps.list` show it; `spent` (the period's spend, holds included) in lists only.
public struct CapView: JSONRepresentable, Equatable {
    public var cap: Cap
    public var spent: Money?

    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "capId": .string(cap.id), "scope": .string(cap.target.scope.rawValue), "scopeId": .string(cap.target.id),
            "period": .string(cap.period.rawValue), "limit": .string(cap.limit.decimalString),
        ]
        if let percent = cap.warnAtPercent { fields["warnAtPercent"] = .integer(Int64(percent)) }
        if let spent { fields["spent"] = .string(spent.decimalString) }
        return .object(fields)
    }
}
