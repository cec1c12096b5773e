import Foundation
import Logging
import Synchronization
import TollgateCore
import TollgateJSON
import TollgatePricing
import TollgateStorage

/// The root of the actor tree: authenticates tokens and starts each tenant's actor on first use.
///
/// A tenant actor is built from one storage snapshot; concurrent first requests for one tenant share the
/// same start-up task, so a tenant is never loaded twice.
public actor Supervisor {

    public nonisolated let services: RuntimeServices
    let configuration: RuntimeConfiguration
    /// SHA-256 of the root operator token.
    let rootTokenHash: String
    private var tenants: [String: Task<TenantActor, any Error>] = [:]
    /// The tenants whose actor has started, readable without a hop onto this actor: every request looks its
    /// tenant up, and an actor, once started, runs for the life of the process.
    private nonisolated let started = Mutex<[String: TenantActor]>([:])
    /// The credit-token signing keys, read from storage at first use (made there if there are none).
    private var keyRing: SigningKeyRing?

    public init(services: RuntimeServices, rootTokenHash: String, configuration: RuntimeConfiguration = .init()) {
        self.services = services
        self.rootTokenHash = rootTokenHash
        self.configuration = configuration
    }

    /// What every failure to authenticate says, so a caller learns nothing about which tokens exist.
    static let denied = TollgateError.unauthenticated("invalid, expired or revoked token")

    /// Resolves a bearer token to a principal.
    public func authenticate(_ token: String) async throws(TollgateError) -> Principal {
        let denied = Self.denied
        let hash = Secrets.hash(token)
        if Secrets.equal(hash, rootTokenHash) { return .root }
        if token.hasPrefix(Secrets.operatorTokenPrefix) {
            guard
                let stored = try await services.storage(
                    "authenticating",
                    { () async throws(StorageError) in
                        try await services.store.operatorCredential(tokenHash: hash)
                    })
            else { throw denied }
            // As for agents, the tenant actor's copy is authoritative.
            let tenant = try await tenant(stored.tenantId)
            let credential: OperatorCredential
            do { credential = try await tenant.usableOperator(stored.id) } catch { throw denied }
            await tenant.noteUse(credential.id)
            return .tenantOperator(
                tenantId: credential.tenantId, credentialId: credential.id, scopes: credential.scopes)
        }
        if CreditToken.looksSigned(token) {
            let now = services.clock.now()
            var ring = try await signingKeys()
            var claims = CreditToken.verified(token, keys: ring.verifying(at: now), at: now)
            if claims == nil {
                // Signed by a key another node made since this one read the ring?
                ring = try await signingKeys(reload: true)
                claims = CreditToken.verified(token, keys: ring.verifying(at: now), at: now)
            }
            guard let claims else { throw denied }
            return try await agent(claims.credentialId, of: claims.tenantId, for: claims.agentId)
        }
        if token.hasPrefix(Secrets.agentTokenPrefix) {
            guard
                let stored = try await services.storage(
                    "authenticating",
                    { () async throws(StorageError) in
                        try await services.store.credential(tokenHash: hash)
                    })
            else { throw denied }
            return try await agent(stored.id, of: stored.tenantId)
        }
        throw denied
    }

    /// The agent principal of a credential found by its token (of `agentId`, when the token says so). The tenant
    /// actor's copy is authoritative: it sees revocations made since storage was read.
    private func agent(_ credentialId: String, of tenantId: String, for agentId: String? = nil)
        async throws(TollgateError) -> Principal
    {
        let credential: Credential
        let tenant: TenantActor
        do {
            tenant = try await self.tenant(tenantId)
            credential = try await tenant.usableCredential(credentialId)
        } catch { throw Self.denied }
        guard agentId == nil || credential.agentId == agentId else { throw Self.denied }
        await tenant.noteUse(credential.id)
        return .agent(
            tenantId: credential.tenantId, agentId: credential.agentId, credentialId: credential.id,
            scopes: credential.scopes)
    }

    /// The client-credentials exchange: an agent's client id and secret for a short-lived `AGT-` token.
    public func exchange(clientId: String, clientSecret: String, scopes: [String]?, ttlSeconds: Int64)
        async throws(TollgateError) -> CredentialIssued
    {
        guard
            let found = try await services.storage(
                "exchanging client credentials",
                { () async throws(StorageError) in
                    try await services.store.agent(clientId: clientId)
                }),
            Secrets.accepts(found.secrets, clientSecret, at: services.clock.now())
        else {
            throw .unauthenticated("invalid client id or secret")
        }
        return try await tenant(found.agent.tenantId).issueCredential(
            agentId: found.agent.id, scopes: scopes ?? [AgentScope.meterWrite], ttlSeconds: ttlSeconds, spendLimit: nil)
    }

    /// Creates a tenant and its first operator credential, whose token is returned once and stored as a hash.
    public func createTenant(name: String) async throws(TollgateError) -> TenantCreated {
        let at = services.clock.now()
        let tenant = TenantRecord(id: Identifiers.make(.tenant, at: at), name: name, createdAt: at)
        let (first, token) = TenantActor.firstOperator(tenantId: tenant.id, at: at)
        try await services.storage("creating a tenant") { () async throws(StorageError) in
            try await services.store.insertTenant(tenant, firstOperator: first, tokenHash: Secrets.hash(token))
        }
        return TenantCreated(tenant: tenant, operatorToken: token, operatorCredentialId: first.id)
    }

    /// The signing keys: the ring read once from storage, or (`reload`) again; a fresh one stored when there is none.
    public func signingKeys(reload: Bool = false) async throws(TollgateError) -> SigningKeyRing {
        if let keyRing, !reload { return keyRing }
        let stored = try await services.storage("reading the signing keys") { () async throws(StorageError) in
            try await services.store.setting(SigningKeyRing.settingKey)
        }
        if let stored {
            guard let ring = SigningKeyRing(stored: stored) else {
                services.logger.error("the stored signing keys cannot be read")
                throw .unavailable("the signing keys cannot be read")
            }
            keyRing = ring
            return ring
        }
        let ring = SigningKeyRing.fresh(at: services.clock.now())
        try await save(ring)
        return ring
    }

    /// A new signing key from now on; the one before verifies for `overlapSeconds` more.
    public func rotateSigningKeys(overlapSeconds: Int64) async throws(TollgateError) -> SigningKeyRing {
        var ring = try await signingKeys(reload: true)
        ring.rotate(at: services.clock.now(), overlapSeconds: overlapSeconds)
        try await save(ring)
        return ring
    }

    private func save(_ ring: SigningKeyRing) async throws(TollgateError) {
        try await services.storage("storing the signing keys") { () async throws(StorageError) in
            try await services.store.putSetting(SigningKeyRing.settingKey, ring.stored)
        }
        keyRing = ring
    }

    public func allTenants() async throws(TollgateError) -> [TenantRecord] {
        try await services.storage("listing tenants") { () async throws(StorageError) in
            try await services.store.tenants()
        }
    }

    /// The actor of `tenantId`, started from storage if it is not running. `NOT_FOUND` if no such tenant.
    public nonisolated func tenant(_ tenantId: String) async throws(TollgateError) -> TenantActor {
        if let running = started.withLock({ $0[tenantId] }) { return running }
        return try await start(tenantId)
    }

    private func start(_ tenantId: String) async throws(TollgateError) -> TenantActor {
        let task: Task<TenantActor, any Error>
        if let running = tenants[tenantId] {
            task = running
        } else {
            task = Task { [services, configuration] in
                guard let snapshot = try await services.store.loadTenant(tenantId) else {
                    throw TollgateError.notFound("no tenant \(tenantId)")
                }
                // Spend in each customer's current billing period and local day, as its caps count it.
                var directory = try TenantDirectory(snapshot: snapshot, registry: services.registry)
                let now = services.clock.now()
                var windows = SpendWindows(byCustomer: [:], fallback: CapWindows(now, calendar: .monthlyUTC))
                for customer in snapshot.customers {
                    windows.byCustomer[customer.id] = directory.capWindows(customer.id, at: now)
                }
                let spend = try await services.store.spend(tenantId: tenantId, windows: windows)
                let open = try await services.store.sessions(
                    tenantId: tenantId, .open, limit: configuration.openSessionsMax)
                let recent = try await services.store.sessions(
                    tenantId: tenantId, .closed, limit: configuration.closedSessionsLoadedMax)
                let timeouts = try await services.store.sessionTimeouts(tenantId: tenantId).map {
                    SessionTimeouts(
                        idleAfter: Double($0.idleAfterMs) / 1000, sessionTimeout: Double($0.sessionTimeoutMs) / 1000)
                }
                // A hold whose commit was recorded just before a crash is done, not held.
                var held: [ReservationRecord] = []
                for reservation in try await services.store.heldReservations(tenantId: tenantId) {
                    if let committed = try await services.store.idempotencyRecord(
                        tenantId: tenantId, key: TenantActor.commitKey(reservation.id))
                    {
                        let receipt = (try? JSONCodec.parse(committed.result))?["receiptId"]?.stringValue
                        try await services.store.write(
                            .finishReservation(
                                tenantId: tenantId, id: reservation.id, state: .committed, receiptId: receipt))
                    } else {
                        held.append(reservation)
                    }
                }
                var loaded = TenantActor.Loaded(
                    snapshot: snapshot, directory: directory, spend: spend, spendWindows: windows,
                    sessions: open + recent, sessionTimeouts: timeouts, reservations: held)
                for customerId in Set(snapshot.creditGrants.map(\.customerId)) {
                    loaded.credits[customerId] = try await CreditLoading.wallet(
                        customerId, grants: snapshot.creditGrants, tenantId: tenantId, store: services.store,
                        calendars: directory.subscriptionCalendars, before: nil
                    ).wallet
                }
                return try TenantActor(loaded, services: services, configuration: configuration)
            }
            tenants[tenantId] = task
        }
        do {
            let tenant = try await task.value
            started.withLock { $0[tenantId] = tenant }
            return tenant
        } catch {
            // A failed start is not cached: the next request tries again.
            if tenants[tenantId] == task { tenants[tenantId] = nil }
            if let error = error as? TollgateError { throw error }
            services.logger.error("tenant start failed", metadata: ["tenant": "\(tenantId)", "error": "\(error)"])
            throw .unavailable("tenant could not be loaded")
        }
    }

    /// Lets every running tenant close its timed-out sessions. Called by the server's sweeper.
    public func sweepSessions() async {
        for task in tenants.values {
            guard let tenant = try? await task.value else { continue }
            await tenant.sweepSessions()
        }
    }
}
