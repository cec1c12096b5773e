import Foundation
import Synchronization
import TollgateCore
import TollgateStorage

/// Delivers alerts to the operators watching a tenant: every connection that called `alerts.subscribe`
/// gets the ones of the kinds it asked for, as `alert` notifications. Alerts are stored first (for
/// `alerts.list`), then pushed, so anything an operator saw pushed is also in the list.
public final class AlertHub: Sendable {
    public static let kinds = ["cap_warning", "cap_reached", "session_closed", "velocity", "margin_guard"]

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

extension TenantActor {
    /// Raises an alert: stored, then pushed to subscribed operators. Runs beside the caller, which never
    /// waits for it: an agent's call is not slowed by its operator's notifications.
    func raise(_ kind: String, _ fields: [String: JSONValue]) {
        let now = services.clock.now()
        let id = Identifiers.make(.alert, at: now)
        var params = fields
        params["kind"] = .string(kind)
        params["alertId"] = .string(id)
        params["at"] = .string(Timestamp.format(now))
        let body = JSONValue.object(params)
        let record = AlertRecord(tenantId: tenantId, id: id, kind: kind, at: now, body: JSONCodec.string(body))
        let (store, alerts, logger, tenantId) = (services.store, services.alerts, services.logger, tenantId)
        Task {
            do { try await store.insertAlert(record) } catch {
                logger.error(
                    "storing an alert failed",
                    metadata: ["tenant": "\(tenantId)", "kind": "\(kind)", "error": "\(error)"])
            }
            alerts.push(tenantId: tenantId, kind: kind, params: body)
        }
    }
}
