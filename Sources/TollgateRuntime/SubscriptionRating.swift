import Foundation
import TollgateCore
import TollgatePricing
import TollgateStorage

/// One subscription's pricing state for one billing period under one plan version, in two views:
///
/// - the admitted view holds every call admitted so far and not known to be lost, recorded or still on its
///   way to storage: the next call is quoted against it, so calls in flight together are priced one after
///   the other, marginally;
/// - `recorded` holds only the calls whose records are durable: what storage would rebuild.
///
/// A call that is admitted and then not recorded (its group commit failed, its key turned out to be stored
/// already, or it was stale) is taken out by starting the admitted view again from `recorded` plus the calls
/// still in flight. Nothing is read from storage for that, so a retry storm after a restart costs no more per
/// call as the period's charges grow.
///
/// The calls admitted after a lost one were priced with its units counted. On a plan whose prices depend on
/// earlier calls, each admitted call gets a ticket in the subscription's `PricingStream`: the store does not
/// write a call priced with a lost call counted (`.stale`), and the admitted view leaves such calls out as
/// soon as it learns of the loss, so that their callers price them again against what was really recorded.
final class SubscriptionRating {
    private var admitted: PlanRating
    private var recorded: PlanRating
    /// The calls admitted and not yet recorded or lost, by admission number, with the count of lost calls
    /// their price accounted for.
    private var inFlight: [UInt64: (event: RatedEvent, dropsKnown: Int)] = [:]
    private var nextNumber: UInt64 = 0
    /// Nil when the plan prices each call on its own: then no call's price depends on another's fate.
    private let stream: PricingStream?
    /// How many of the stream's lost calls the admitted view has left out.
    private var dropsKnown = 0

    var plan: Plan { recorded.plan }
    /// The billing period these totals run for.
    let period: BillingPeriod

    /// Starts from what storage holds for `period`.
    init(recorded: PlanRating, period: BillingPeriod) {
        self.recorded = recorded
        self.period = period
        admitted = recorded.copy()
        stream = recorded.plan.pricesDependOnEarlierEvents ? PricingStream() : nil
    }

    /// What `event` costs after every call admitted so far and not lost. Changes nothing.
    func quote(_ event: RatedEvent) throws(MoneyError) -> PlanRating.Quote {
        if let stream, stream.droppedCount != dropsKnown { rebuild() }
        return try admitted.quote(event)
    }

    /// Folds an admitted call into the admitted view; `quote` must be its quote from `quote(_:)` in the same
    /// actor turn. Returns the call's number and, on a plan whose prices depend on earlier calls, its ticket.
    func admit(_ event: RatedEvent, quote: PlanRating.Quote) throws(MoneyError) -> (
        number: UInt64, ticket: PricingTicket?
    ) {
        try admitted.apply(event, quote: quote)
        nextNumber += 1
        inFlight[nextNumber] = (event, dropsKnown)
        return (nextNumber, stream.map { PricingTicket(stream: $0, number: nextNumber, dropsKnown: dropsKnown) })
    }

    /// The call's record is durable.
    func recorded(_ number: UInt64) {
        guard let call = inFlight.removeValue(forKey: number) else { return }
        // It was priced within range when admitted, against totals that held at least these.
        _ = try? recorded.rate(call.event)
    }

    /// The call was not recorded: the admitted view starts again without it.
    func notRecorded(_ number: UInt64) {
        guard inFlight.removeValue(forKey: number) != nil else { return }
        rebuild()
    }

    /// `recorded` plus the calls in flight that are neither lost nor stale (priced with a lost call counted:
    /// the store will not write them).
    private func rebuild() {
        let dropped = stream?.droppedNumbers ?? []
        let lost = Set(dropped)
        let rebuilt = recorded.copy()
        for (number, call) in inFlight.sorted(by: { $0.key < $1.key }) {
            guard !lost.contains(number),
                !PricingStream.isStale(number: number, dropsKnown: call.dropsKnown, dropped: dropped)
            else { continue }
            _ = try? rebuilt.rate(call.event)
        }
        admitted = rebuilt
        dropsKnown = dropped.count
    }
}
