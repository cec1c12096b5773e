import Logging
import ServiceLifecycle
import TollgateCore
import TollgateStorage
import TollgateStripe

/// The hand-off to Stripe: whether there is one (a secret key, from the environment `TOLLGATE_STRIPE_SECRET_KEY`
/// or the file's `stripe.secretKey`; never printed or logged), where Stripe's API is (`stripe.apiBase`; a local
/// stand-in in tests), and the outbox's pace (`limits`).
public struct StripeConfiguration: ComponentConfiguration {
    /// Nil: no hand-off; invoices say `stripeConfigured: false`.
    public var secretKey: String?
    public var apiBase = "https://api.stripe.com"
    /// The first retry of a step that got no answer waits this long; each next one twice as long.
    public var retryBaseMs = 1_000
    /// No retry waits longer than this.
    public var retryMaxMs = 600_000
    /// How often the outbox looks for due hand-offs.
    public var pollMs = 1_000
    /// How long one request to Stripe may take.
    public var requestTimeoutMs = 30_000

    public init() {}

    public static let settings: [Setting<Self>] = [
        Setting(
            "stripeRetryBaseMs", \.retryBaseMs,
            "the first retry of a Stripe request that got no answer (or 409, 429, 5xx) waits this long, each next "
                + "one twice as long"),
        Setting("stripeRetryMaxMs", \.retryMaxMs, "the longest wait between two retries of a Stripe request"),
        Setting("stripePollMs", \.pollMs, "how often the Stripe outbox looks for invoices due to be sent or voided"),
        Setting("stripeRequestTimeoutMs", \.requestTimeoutMs, "how long one request to Stripe may take"),
    ]

    public func validate() throws(ConfigurationError) {
        try ConfigurationError.check(retryBaseMs >= 1, "stripeRetryBaseMs", "at least 1")
        try ConfigurationError.check(retryMaxMs >= retryBaseMs, "stripeRetryMaxMs", "at least stripeRetryBaseMs")
        try ConfigurationError.check(pollMs >= 1, "stripePollMs", "at least 1")
        try ConfigurationError.check(requestTimeoutMs >= 1, "stripeRequestTimeoutMs", "at least 1")
        if let secretKey, secretKey.isEmpty || secretKey.contains(where: \.isWhitespace) {
            throw .invalid(key: "stripe.secretKey", rule: "a Stripe secret key (sk_…), without spaces")
        }
        guard apiBase.hasPrefix("https://") || apiBase.hasPrefix("http://") else {
            throw .invalid(key: "stripe.apiBase", rule: "an http:// or https:// address")
        }
    }
}

/// Runs the Stripe outbox until graceful shutdown.
struct StripeOutboxService: Service {
    let outbox: StripeOutbox
    let pollMs: Int

    func run() async throws {
        await cancelWhenGracefulShutdown { await outbox.run(pollMs: pollMs) }
    }

    static func make(
        _ configuration: StripeConfiguration, store: any TollgateStore, clock: any WallClock, logger: Logger
    )
        -> StripeOutboxService?
    {
        guard let key = configuration.secretKey else { return nil }
        let transport = StripeHTTPTransport(
            apiBase: configuration.apiBase, secretKey: key, timeoutMs: configuration.requestTimeoutMs)
        let outbox = StripeOutbox(
            store: store, transport: transport, clock: clock,
            settings: .init(retryBaseMs: configuration.retryBaseMs, retryMaxMs: configuration.retryMaxMs),
            logger: logger)
        return StripeOutboxService(outbox: outbox, pollMs: configuration.pollMs)
    }
}
