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
        var send: Sink
    }

    private let subscribers = Mutex<[UInt64: Subscriber]>([:])
    private let nextId = Atomic<UInt64>(1)

    public init() {}

    /// Starts pushing `kinds` of `tenantId`'s alerts to `send`; the returned id ends it (`unsubscribe`).
    public func subscribe(tenantId: String, kinds: Set<String>, send: @escaping Sink) -> UInt64 {
        let id = nextId.wrappingAdd(1, ordering: .relaxed).oldValue
        subscribers.withLock { $0[id] = Subscriber(tenantId: tenantId, kinds: kinds, send: send) }
        return id
    }

    public func unsubscribe(_ id: UInt64) { _ = subscribers.withLock { $0.removeValue(forKey: id) } }

    /// Pushes an alert to the tenant's subscribers of its kind.
    func push(tenantId: String, kind: String, params: JSONValue) {
        let sinks = subscribers.withLock { all in
            all.values.filter { $0.tenantId == tenantId && $0.kinds.contains(kind) }.map(\.send)
        }
        let notification: JSONValue = ["jsonrpc": "2.0", "method": "alert", "params": params]
        for send in sinks { send(notification) }
    }
}
