import Foundation
import TollgateCore
import TollgateJSON
import TollgateStorage

/// The answer to `meter.authorize`: the hold made (stored with its key and replayed unchanged).
public struct Hold: JSONRepresentable, Equatable {
    public var reservation: ReservationRecord

    public var json: JSONValue {
        [
            "reservationId": .string(reservation.id), "held": .string(reservation.held.decimalString),
            "currency": .string(reservation.currency), "expiresAt": .string(Timestamp.format(reservation.expiresAt)),
            "sessionId": .string(reservation.path.sessionId), "state": .string(reservation.state.rawValue),
        ]
    }
}

/// The answer to `meter.release`: the hold is given back (or was already, released or expired).
public struct Release: JSONRepresentable, Equatable {
    public var reservationId: String
    public var state: ReservationRecord.State

    public var json: JSONValue {
        ["reservationId": .string(reservationId), "released": true, "state": .string(state.rawValue)]
    }
}
