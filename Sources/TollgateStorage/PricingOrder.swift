import Synchronization

/// The order in which one pricing state admitted its calls, shared by the tenant actor that prices them and
/// the store that records them: what keeps marginal prices exact when a call is admitted and then not
/// recorded.
///
/// On a plan whose price depends on earlier calls (tiers, bundles, commitments), a call is priced against
/// every call admitted before it, recorded or still queued in the ledger writer. When one of those is not
/// recorded after all — its group commit failed, or its key turned out to be stored already — the calls
/// priced after it were priced for units that do not exist. Such a call is *stale*: the store does not
/// write it (outcome `.stale`), and the actor prices it again against what was really recorded.
///
/// A stream numbers the calls in admission order (the ledger writer queues them in that order, so a call is
/// committed after every call it was priced against), and keeps the numbers of the calls not recorded, in
/// the order they were found. A call carries how many of those its price already accounts for
/// (`PricingTicket.dropsKnown`): it is stale when a call numbered before it was found not recorded since.
public final class PricingStream: Sendable {
    private let dropped = Mutex<[UInt64]>([])

    public init() {}

    /// How many calls have been found not recorded so far.
    public var droppedCount: Int { dropped.withLock { $0.count } }

    /// The numbers of the calls found not recorded, in the order they were found.
    public var droppedNumbers: [UInt64] { dropped.withLock { $0 } }

    /// The call `number` was not recorded (its group failed, or its key was stored already).
    public func notRecorded(_ number: UInt64) { dropped.withLock { $0.append(number) } }

    /// Whether the price of the call `ticket` counted a call that was not recorded.
    public func isStale(_ ticket: PricingTicket) -> Bool {
        dropped.withLock { dropped in
            dropped.count > ticket.dropsKnown && dropped[ticket.dropsKnown...].contains { $0 < ticket.number }
        }
    }

    /// The same rule over a list the caller has already read: `dropsKnown` of a call numbered `number`.
    public static func isStale(number: UInt64, dropsKnown: Int, dropped: [UInt64]) -> Bool {
        dropped.count > dropsKnown && dropped[dropsKnown...].contains { $0 < number }
    }
}

/// Where one call stands in its pricing stream: its admission number, and how many calls found not recorded
/// its price accounts for.
public struct PricingTicket: Sendable, Hashable {
    public let stream: PricingStream
    public let number: UInt64
    public let dropsKnown: Int

    public init(stream: PricingStream, number: UInt64, dropsKnown: Int) {
        self.stream = stream
        self.number = number
        self.dropsKnown = dropsKnown
    }

    public static func == (lhs: PricingTicket, rhs: PricingTicket) -> Bool {
        lhs.stream === rhs.stream && lhs.number == rhs.number && lhs.dropsKnown == rhs.dropsKnown
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(ObjectIdentifier(stream))
        hasher.combine(number)
        hasher.combine(dropsKnown)
    }
}

extension LedgerEntry {
    /// Whether this entry's price counted a call that was not recorded: such an entry is not written.
    public var isStale: Bool { pricing.map { $0.stream.isStale($0) } ?? false }

    /// This entry was not written: calls priced after it are stale.
    public func notRecorded() {
        if let pricing { pricing.stream.notRecorded(pricing.number) }
    }
}
