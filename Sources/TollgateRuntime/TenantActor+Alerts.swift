import Foundation
import TollgateCore
import TollgateJSON
import TollgateStorage

/// Alerts raised by the tenant's calls, `alerts.list`, and the operator's view of the caps (`caps.list`).
extension TenantActor {
    /// Raises `alerts`: each stored, then pushed to subscribed operators. Runs beside the caller, which never
    /// waits for it: an agent's call is not slowed by its operator's notifications.
    func raise(_ alerts: [Alert]) {
        for alert in alerts { raise(alert) }
    }

    func raise(_ alert: Alert?) {
        guard let alert else { return }
        let at = now
        let id = Identifiers.make(.alert, at: at)
        var params = alert.json.objectValue ?? [:]
        params["kind"] = .string(alert.kind.rawValue)
        params["alertId"] = .string(id)
        params["at"] = .string(Timestamp.format(at))
        let body = JSONValue.object(params)
        let record = AlertRecord(
            tenantId: tenantId, id: id, kind: alert.kind.rawValue, at: at, body: JSONCodec.string(body))
        let (store, hub, logger, tenantId) = (services.store, services.alerts, services.logger, tenantId)
        Task {
            do { try await store.insertAlert(record) } catch {
                logger.error(
                    "storing an alert failed",
                    metadata: ["tenant": "\(tenantId)", "kind": "\(alert.kind.rawValue)", "error": "\(error)"])
            }
            hub.push(tenantId: tenantId, kind: alert.kind.rawValue, params: body, at: at)
        }
    }

    public func listAlerts(kinds: [String]?, limit: Int) async throws(TollgateError) -> [JSONValue] {
        try await storage("listing alerts") { () async throws(StorageError) in
            try await services.store.alerts(tenantId: tenantId, kinds: kinds, limit: limit)
        }.map { (try? JSONCodec.parse($0.body)) ?? ["alertId": .string($0.id), "kind": .string($0.kind)] }
    }

    public func listCaps() -> [CapView] {
        let now = self.now
        return capLedger.caps.values.flatMap(\.values).filter { $0.target.scope != .credential }
            .sorted {
                ($0.target.scope.rawValue, $0.target.id, $0.period.rawValue)
                    < ($1.target.scope.rawValue, $1.target.id, $1.period.rawValue)
            }
            .map { cap in
                CapView(
                    cap: cap,
                    spent: cap.period == .session
                        ? nil : capLedger.used(cap, on: [cap.target], during: capWindows(of: cap.target, at: now)))
            }
    }

    /// The cap windows at `date` of the customer `target` belongs to; UTC months and days for a scope that is gone.
    func capWindows(of target: ScopeRef, at date: Date) -> CapWindows {
        let customerId =
            target.scope == .session ? sessions[target.id]?.record.customerId : directory.customerId(of: target)
        return customerId.map { directory.capWindows($0, at: date) } ?? CapWindows(date, calendar: .monthlyUTC)
    }
}
