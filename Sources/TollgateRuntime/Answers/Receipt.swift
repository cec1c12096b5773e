import Foundation
import TollgateCore
import TollgateJSON

/// The answer to an accepted `meter.verify` (and to `meter.commit`, with the reservation it settled).
public struct Receipt: JSONRepresentable, Equatable {
    public var receiptId: String
    public var cost: Money
    public var currency: String
    public var sessionId: String
    /// Each capped scope on the call's path with what is left under its tightest cap once the call is counted.
    public var remaining: [CapScope: Money]
    public var at: Date
    /// For a commit: the reservation it settled and what that reservation held.
    public var settled: (reservationId: String, held: Money)?

    public static func == (lhs: Receipt, rhs: Receipt) -> Bool { lhs.json == rhs.json }

    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "allowed": true, "receiptId": .string(receiptId), "cost": .string(cost.decimalString),
            "currency": .string(currency), "sessionId": .string(sessionId),
            "remaining": .object(
                Dictionary(uniqueKeysWithValues: remaining.map { ($0.key.rawValue, .string($0.value.decimalString)) })),
            "at": .string(Timestamp.format(at)),
        ]
        if let settled {
            fields["reservationId"] = .string(settled.reservationId)
            fields["held"] = .string(settled.held.decimalString)
        }
        return .object(fields)
    }
}
