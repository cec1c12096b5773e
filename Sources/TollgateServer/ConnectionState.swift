import Synchronization
import TollgateCore
import TollgateJSON
import TollgateRuntime

/// What the server remembers about one connection between its requests.
final class ConnectionState: Sendable {
    /// Set by a successful `auth.hello`; nil before it.
    let principal = Mutex<Principal?>(nil)
    /// The session a `meter.verify` without `sessionId` is charged to: one per connection, named lazily.
    let defaultSessionId: String

    /// Writes a notification (an `alert`) on this connection; set by the connection loop.
    let notify = Mutex<(@Sendable (JSONValue) -> Void)?>(nil)
    /// Alert subscriptions to end when the connection closes.
    let alertSubscriptions = Mutex<[UInt64]>([])

    /// The peer's address without its port (what authentication failures are counted per), "" when unknown.
    let remoteAddress: String

    init(defaultSessionId: String, remoteAddress: String = "") {
        self.defaultSessionId = defaultSessionId
        self.remoteAddress = remoteAddress
    }

    var currentPrincipal: Principal? { principal.withLock { $0 } }
}
