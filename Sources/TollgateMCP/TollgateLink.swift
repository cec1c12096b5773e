import TollgateClient
import TollgateJSON
import TollgateWire

/// The proxy's connection to Tollgate, made when first needed and made again when lost: a proxy started while
/// Tollgate is down still starts (its calls are refused meanwhile with a tool error saying so, the default
/// `--on-unavailable block`), and one whose connection drops reconnects at the next call.
package actor TollgateLink {
    private let address: String
    private let token: String
    private var current: TollgateConnection?
    /// The product the proxied server is (`--product`): its calls are priced by the agent's customer's
    /// subscription to it. Nil: the customer's only subscription.
    package nonisolated let product: String?

    package init(address: String, token: String, product: String? = nil) {
        self.address = address
        self.token = token
        self.product = product
    }

    /// An authenticated connection: the current one, or a new one if there is none yet or it was closed.
    func connection() async throws -> TollgateConnection {
        if let current, !current.isClosed { return current }
        let connection = try await TollgateConnection.connect(address: address)
        do {
            _ = try await connection.call(RPCMethod.authHello.rawValue, ["token": .string(token)])
        } catch {
            await connection.close()
            throw error
        }
        current = connection
        return connection
    }

    /// Checks the token again on the current connection (a later `auth.hello` replaces the principal), so that a
    /// revoked or expired credential is refused; throws Tollgate's refusal, or why it cannot be reached.
    func verify() async throws {
        let connection = try await connection()
        _ = try await connection.call(RPCMethod.authHello.rawValue, ["token": .string(token)])
    }

    package func close() async {
        await current?.close()
        current = nil
    }
}
