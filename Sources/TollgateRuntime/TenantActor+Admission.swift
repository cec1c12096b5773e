import Foundation
import TollgateCore
import TollgatePricing
import TollgateStorage

/// One call admitted: its price held on every cap of its path, its usage folded into the subscription's
/// running totals, counted in flight in its session, and (for a commit) its reservation's hold given back.
/// Made by `admit` in one actor turn, and finished exactly once by `finish`, which is the one place that
/// keeps what the call recorded or undoes what it did not.
struct Admission {
    let cost: Money
    let path: ChargePath
    /// `path.scopes`, worked out once.
    let scopes: [ScopeRef]
    /// The call's cap windows (its customer's billing period and local day), for the receipt's and the
    /// warnings' cap arithmetic.
    let windows: CapWindows
    let at: Date
    let rating: SubscriptionRating
    let number: UInt64
    /// Where the call stands among the calls priced before it (nil when its price depends on none).
    let ticket: PricingTicket?
    /// The hold this call settles, taken out of the book when it was admitted.
    let settling: ReservationRecord?
}

extension TenantActor {
    /// How often a call is priced again because calls it was priced after were not recorded.
    static let pricingAttemptsMax = 8

    /// Admits `event` on `path`: prices it against the running totals, checks the margin guard and every cap,
    /// holds the price and folds the call in. Synchronous on purpose: the check and the hold happen in one
    /// actor turn, so no other call can run between them (the one-turn rule). Each refusal undoes what this
    /// function did before it, so a refused call leaves no trace.
    ///
    /// A reservation being committed (`settling`) gives its hold back in this same turn, so the actual cost is
    /// checked against the caps as if the estimate had never been held; if it does not fit, the hold is
    /// restored.
    func admit(
        _ event: RatedEvent, path: ChargePath, rating: SubscriptionRating, at now: Date,
        settling reservation: ReservationRecord?
    ) throws(TollgateError) -> Admission {
        let quote: PlanRating.Quote
        do { quote = try rating.quote(event) } catch {
            throw .validation(field: "quantity", rule: "small enough that the price stays within range")
        }
        let scopes = path.scopes
        let windows = directory.capWindows(path.customerId, at: now)
        try guards.admit(path, session: sessions[path.sessionId]?.record.totals, month: windows.month, at: now)
        try sessions.callStarted(in: path.sessionId, at: now)
        var admitted = false
        defer { if !admitted { callEnded(in: path.sessionId, recorded: nil) } }
        if let reservation {
            guard holds.remove(reservation.id) != nil else {
                throw .conflict("reservation \(reservation.id) is no longer held")
            }
            capLedger.release(reservation.held, on: reservation.path.scopes)
        }
        // A customer paying from credit: what its calls in flight and holds take counts as spent already.
        if let refusal = creditRefusal(quote.price, path: path, currency: rating.plan.currency, at: now) {
            restore(reservation)
            throw .budgetExceeded(refusal, currency: rating.plan.currency)
        }
        // Check and hold in one synchronous step: no other call can run between the two.
        if let refusal = capLedger.reserve(quote.price, on: scopes, during: windows) {
            restore(reservation)
            raise(CapAlerts.refused(refusal, path: path, during: windows, marks: &marks))
            throw .budgetExceeded(refusal, currency: rating.plan.currency)
        }
        let position: (number: UInt64, ticket: PricingTicket?)
        do { position = try rating.admit(event, quote: quote) } catch {
            capLedger.release(quote.price, on: scopes)
            restore(reservation)
            throw .validation(field: "quantity", rule: "small enough that the price stays within range")
        }
        admitted = true
        return Admission(
            cost: quote.price, path: path, scopes: scopes, windows: windows, at: now,
            rating: rating, number: position.number, ticket: position.ticket, settling: reservation)
    }

    /// Finishes an admitted call: `recorded` (its record is durable) commits its price on the caps and counts
    /// it in its session; nil (not recorded: failed, duplicate or stale) gives everything back — the price's
    /// hold, its units in the running totals, the reservation's hold it took.
    func finish(_ admission: Admission, recorded record: ChargeRecord?) {
        if let record {
            admission.rating.recorded(admission.number)
            capLedger.commit(admission.cost, on: admission.scopes, during: admission.windows)
            credits.recorded(record)
            // Counted in the session now, so the guards that run next see its totals with this call.
            callEnded(in: admission.path.sessionId, recorded: record)
        } else {
            capLedger.release(admission.cost, on: admission.scopes)
            admission.rating.notRecorded(admission.number)
            restore(admission.settling)
            callEnded(in: admission.path.sessionId, recorded: nil)
        }
    }

    /// The call admitted in `id` was recorded (`charge`) or not (nil): it is no longer in flight there, and a
    /// close waiting for it goes on.
    func callEnded(in id: String, recorded charge: ChargeRecord?) {
        let (wake, outOfRange) = sessions.callEnded(in: id, recorded: charge)
        if outOfRange { services.logger.error("session total out of range", metadata: ["session": "\(id)"]) }
        for waiter in wake { waiter.resume() }
    }

    /// The refusal of a call costing `price` whose customer blocks at zero credit and cannot pay it from credit,
    /// counting what the customer's calls in flight and holds take; nil otherwise.
    func creditRefusal(_ price: Money, path: ChargePath, currency: String, at date: Date) -> CapRefusal? {
        guard let customer = try? directory.customer(path.customerId) else { return nil }
        return credits.refusal(
            customer, price: price, currency: currency,
            held: capLedger.held[ScopeRef(.customer, path.customerId)] ?? .zero, at: date)
    }

    /// Holds `reservation` again: a commit that took its hold did not go through.
    private func restore(_ reservation: ReservationRecord?) {
        guard let reservation else { return }
        capLedger.hold(reservation.held, on: reservation.path.scopes)
        holds.insert(reservation)
    }
}
