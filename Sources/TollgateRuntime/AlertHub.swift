import Foundation
import Synchronization
import TollgateCore
import TollgateJSON
import TollgateStorage

/// Delivers alerts to the operators watching a tenant: every connection that called `alerts.subscribe`
/// gets the ones of the kinds it asked for, as `alert` notifications. Alerts are stored first (for
/// `alerts.list`), then pushed, so anything an operator saw pushed is also in the list.
public final class AlertHub: Sendable {
    public static let kinds = AlertKind.allCases.map(\.rawValue)

    public typealias Sink = @Sendable (JSONValue) -> Void

    private struct Subscriber {
        var tenantId: String
        var kinds: Set<String>
        /// The operator credential that subscribed (nil: root), and when it stops working, once known.
        var credentialId: String?
        var endsAt: Date?
        var send: Sink
    }

    private let subscribers = Mutex<[UInt64: Subscriber]>([:])
    private let nextId = Atomic<UInt64>(1)

    public init() {}

    /// Starts pushing `kinds` of `tenantId`'s alerts to `send`, for as long as the subscribing operator credential
    /// works (`endsAt`, its expiry; a revocation is said by `credentialEnds`); the returned id ends it
    /// (`unsubscribe`).
    public func subscribe(
        tenantId: String, kinds: Set<String>, credentialId: String? = nil, endsAt: Date? = nil,
        send: @escaping Sink
    ) -> UInt64 {
        let id = nextId.wrappingAdd(1, ordering: .relaxed).oldValue
        subscribers.withLock {
            $0[id] = Subscriber(
                tenantId: tenantId, kinds: kinds, credentialId: credentialId, endsAt: endsAt, send: send)
        }
        return id
    }

    public func unsubscribe(_ id: UInt64) { _ = subscribers.withLock { $0.removeValue(forKey: id) } }

    /// The operator credential `credentialId` of `tenantId` stops working at `at` (revoked now, or rotated with an
    /// overlap): its subscriptions receive nothing pushed from then on — a push is not a request, so without this a
    /// revoked operator's open subscription would go on receiving.
    public func credentialEnds(tenantId: String, credentialId: String, at: Date) {
        subscribers.withLock { all in
            for (id, subscriber) in all where subscriber.tenantId == tenantId && subscriber.credentialId == credentialId
            {
                all[id]?.endsAt = min(subscriber.endsAt ?? at, at)
            }
        }
    }

    /// Pushes an alert raised at `at` to the tenant's subscribers of its kind whose credential still works; those
    /// whose credential has ended are dropped.
    func push(tenantId: String, kind: String, params: JSONValue, at: Date) {
        let sinks = subscribers.withLock { all in
            for (id, subscriber) in all where subscriber.endsAt.map({ $0 <= at }) == true { all[id] = nil }
            return all.values.filter { $0.tenantId == tenantId && $0.kinds.contains(kind) }.map(\.send)
        }
        let notification: JSONValue = ["jsonrpc": "2.0", "method": "alert", "params": params]
        for send in sinks { send(notification) }
    }
}
