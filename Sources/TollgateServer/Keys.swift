import TollgateCore
import TollgateRuntime
import TollgateWire

/// Reading idempotency keys from params: one format for every method.
enum Keys {
    /// A required `idempotencyKey`.
    static func key(_ params: Params, _ context: RequestContext) throws -> String {
        let lengthMax = context.idBytesMax
        let key = try params.string("idempotencyKey", lengthMax: max(1024, lengthMax))
        guard IdempotencyKey.isValid(key, lengthMax: lengthMax) else {
            throw TollgateError.validation(
                field: "idempotencyKey", rule: "1 to \(lengthMax) printable ASCII characters")
        }
        return key
    }

    /// The call under the idempotency rule when its params carry an `idempotencyKey` (optional for every
    /// writing method but `meter.verify` and `meter.authorize`), sent by the connection's agent or operator.
    static func call(_ params: Params, _ method: WriteMethod, _ context: RequestContext) throws -> KeyedCall? {
        guard params.object["idempotencyKey"] != nil else { return nil }
        let principal: String
        switch context.connection.currentPrincipal {
        case .agent(_, let agentId, _, _)?: principal = agentId
        default: principal = KeyedCall.operatorPrincipal
        }
        return KeyedCall(
            key: try key(params, context), method: method, params: .object(params.object), principal: principal)
    }
}
