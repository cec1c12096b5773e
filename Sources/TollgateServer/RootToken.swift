import TollgateCore
import TollgateRuntime
import TollgateStorage

/// The root operator token: from `TOLLGATE_ADMIN_TOKEN` when set, otherwise generated on first start,
/// printed once, and afterwards known only by its hash.
enum RootToken {
    static let settingKey = "root_token_hash"
    static let environmentVariable = "TOLLGATE_ADMIN_TOKEN"
    static let lengthMin = 16

    /// Returns the hash to accept, and the token to print if one was just generated.
    static func resolve(environment: [String: String], store: any TollgateStore) async throws -> (
        hash: String, generated: String?
    ) {
        if let token = environment[environmentVariable], !token.isEmpty {
            guard token.count >= lengthMin else {
                throw ConfigurationError.invalid(key: environmentVariable, rule: "at least \(lengthMin) characters")
            }
            let hash = Secrets.hash(token)
            try await store.putSetting(settingKey, hash)
            return (hash, nil)
        }
        if let hash = try await store.setting(settingKey) { return (hash, nil) }
        let token = Secrets.make(prefix: Secrets.rootTokenPrefix)
        let hash = Secrets.hash(token)
        try await store.putSetting(settingKey, hash)
        return (hash, token)
    }
}
