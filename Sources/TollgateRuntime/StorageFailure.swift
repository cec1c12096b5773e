import Logging
import TollgateCore
import TollgateStorage

extension RuntimeServices {
    /// Runs one storage operation, mapping its failure to the domain's error: the one place where that is done,
    /// with one wording, logged with what was being done (and for which tenant). A uniqueness rule broken is
    /// CONFLICT; anything else is UNAVAILABLE, retryable, with nothing changed. Runs on the caller's executor:
    /// an actor calling it stays on itself.
    nonisolated(nonsending) func storage<T>(
        _ what: String, tenant: String? = nil, _ body: () async throws(StorageError) -> T
    )
        async throws(TollgateError) -> T
    {
        do { return try await body() } catch {
            var metadata: Logger.Metadata = ["doing": "\(what)", "error": "\(error)"]
            if let tenant { metadata["tenant"] = "\(tenant)" }
            logger.error("storage failed", metadata: metadata)
            if case .duplicate = error { throw .conflict("an object with this identity already exists") }
            throw .unavailable("storage is unavailable; nothing was changed")
        }
    }
}
