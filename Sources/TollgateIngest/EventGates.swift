import Foundation
import TollgateJSON

/// The four gates in the order a batch goes through them, one event at a time: **schema** (can it be read?),
/// **idempotency** (is its id new, or this very event again?), **timestamp** (is it within the window?) and
/// **lateness** (on time, late, or for a period already closed?). A refused event claims nothing: fixed, it can
/// be sent again under the same id.
///
/// The gates decide; they store nothing. The caller looks up the fingerprints already stored for the batch's ids,
/// and records the events this says to record — with their ids, in one transaction.
public struct EventGates: Sendable {
    public var schema: SchemaGate
    public var timestamp: TimestampGate
    public var lateness: LatenessGate

    /// What becomes of one event of a batch.
    public enum Outcome: Sendable, Hashable {
        /// Record it (on time, late, or as an adjustment for the next invoice), its id with `fingerprint`.
        case record(UsageEvent, lateness: LatenessGate.Verdict, fingerprint: String)
        /// This very event was recorded already (by an earlier batch, or earlier in this one).
        case duplicate(eventId: String)
        case rejected(eventId: String?, EventRejection)
    }

    /// The gates an event that is recorded has passed, for its provenance.
    public static let names = ["schema", "idempotency", "timestamp", "lateness"]

    public init(
        schema: SchemaGate = SchemaGate(), timestamp: TimestampGate = TimestampGate(),
        lateness: LatenessGate = LatenessGate()
    ) {
        self.schema = schema
        self.timestamp = timestamp
        self.lateness = lateness
    }

    /// - Parameters:
    ///   - principal: who sent the batch (an agent id), part of each event's fingerprint.
    ///   - stored: the fingerprints already recorded under the batch's event ids (absent ids are new).
    ///   - closedThrough: the end of the customer's last closed billing period, if any.
    public func check(
        _ batch: [JSONValue], principal: String, now: Date, stored: [String: String], closedThrough: Date? = nil
    ) -> [Outcome] {
        var claimed = stored  // ids taken so far, this batch's earlier events included
        return batch.map { raw in
            let event: UsageEvent
            switch schema.read(raw) {
            case .failure(let rejection): return .rejected(eventId: raw["eventId"]?.stringValue, rejection)
            case .success(let read): event = read
            }
            let fingerprint = IdempotencyGate.fingerprint(raw, principal: principal)
            switch IdempotencyGate.check(fingerprint, stored: claimed[event.eventId]) {
            case .duplicate: return .duplicate(eventId: event.eventId)
            case .mismatch(let rejection): return .rejected(eventId: event.eventId, rejection)
            case .new: break
            }
            if let rejection = timestamp.check(event.occurredAt, now: now) {
                return .rejected(eventId: event.eventId, rejection)
            }
            claimed[event.eventId] = fingerprint
            return .record(
                event, lateness: lateness.check(event.occurredAt, now: now, closedThrough: closedThrough),
                fingerprint: fingerprint)
        }
    }
}
