import Foundation
import Logging
import TollgateBilling
import TollgateCore
import TollgateJSON
import TollgateStorage

/// Works the Stripe outbox: every hand-off that is due — an invoice to send, a void to carry out — is taken step by
/// step (`StripeHandoff`), its progress stored after each step that Stripe answered, so a failure or a restart
/// resumes at the step that did not finish and no step is sent twice. A step that gets no answer (or 409, 429, a
/// 5xx) is tried again later, after a back-off that doubles each time up to `retryMaxMs`; with the same
/// idempotency key, so that a request Stripe did carry out before its answer was lost is answered, not repeated. A
/// step Stripe refuses stops the hand-off (`failed`, with Stripe's message) for an operator.
public actor StripeOutbox {
    public struct Settings: Sendable {
        public var retryBaseMs: Int
        public var retryMaxMs: Int
        /// How many due hand-offs one round takes.
        public var batch: Int

        public init(retryBaseMs: Int = 1_000, retryMaxMs: Int = 600_000, batch: Int = 50) {
            self.retryBaseMs = retryBaseMs
            self.retryMaxMs = retryMaxMs
            self.batch = batch
        }
    }

    let store: any TollgateStore
    let transport: any StripeTransport
    let clock: any WallClock
    let settings: Settings
    let logger: Logger

    public init(
        store: any TollgateStore, transport: any StripeTransport, clock: any WallClock, settings: Settings = .init(),
        logger: Logger
    ) {
        self.store = store
        self.transport = transport
        self.clock = clock
        self.settings = settings
        self.logger = logger
    }

    /// The wait after `attempts` failed attempts in a row: `retryBaseMs` doubled per attempt, at most `retryMaxMs`.
    public static func backoffMs(attempts: Int, settings: Settings) -> Int {
        let doublings = min(max(attempts - 1, 0), 30)
        let (wait, overflow) = settings.retryBaseMs.multipliedReportingOverflow(by: 1 << doublings)
        return overflow ? settings.retryMaxMs : min(wait, settings.retryMaxMs)
    }

    /// One round: every hand-off due now, the earliest first. Returns how many were worked on.
    @discardableResult
    public func runOnce() async -> Int {
        let due: [OutboxRecord]
        do { due = try await store.dueOutbox(at: clock.now(), limit: settings.batch) } catch {
            logger.error("the Stripe outbox could not be read", metadata: ["error": "\(error)"])
            return 0
        }
        for record in due { await work(record) }
        return due.count
    }

    /// Rounds until the task is cancelled, `pollMs` apart.
    public func run(pollMs: Int) async {
        while !Task.isCancelled {
            await runOnce()
            try? await Task.sleep(for: .milliseconds(pollMs))
        }
    }

    private func work(_ record: OutboxRecord) async {
        var record = record
        do {
            guard let stored = try await store.invoice(tenantId: record.tenantId, id: record.invoiceId) else {
                return try await stop(&record, .failed, "the invoice is not stored")
            }
            let invoice = try Invoice(json: JSONCodec.parse(Array(stored.document.utf8)), tenantId: stored.tenantId)
            switch record.kind {
            case .send: try await send(invoice, &record)
            case .void: try await void(invoice, &record)
            }
        } catch {
            // Storage failed: the hand-off stays as stored, and is taken again in a later round.
            logger.error(
                "a Stripe hand-off could not be worked on",
                metadata: ["invoice": "\(record.invoiceId)", "error": "\(error)"])
        }
    }

    private func send(_ invoice: Invoice, _ record: inout OutboxRecord) async throws {
        var progress = StripeProgress(stored: record.progress)
        if progress.customer == nil {
            progress.customer = try await store.stripeCustomer(
                tenantId: invoice.tenantId, customerId: invoice.customerId)
        }
        // Voided before anything of it reached Stripe: nothing to send, and nothing to void there.
        if invoice.status == .void, progress.invoice == nil {
            return try await stop(&record, .cancelled, nil)
        }
        while let request = StripeHandoff.next(sending: invoice, progress: progress) {
            guard let next = try await step(request, invoice: invoice, progress: progress, &record) else { return }
            progress = next
            if case .customer = request.step, let customer = progress.customer {
                try await store.putStripeCustomer(
                    tenantId: invoice.tenantId, customerId: invoice.customerId, stripeCustomerId: customer)
            }
        }
        logger.info(
            "invoice handed to Stripe",
            metadata: ["invoice": "\(invoice.id)", "stripeInvoice": "\(progress.invoice ?? "")"])
        try await stop(&record, .done, nil)
    }

    /// A void is carried out once the invoice's send has ended: if it reached Stripe, its Stripe invoice is voided.
    private func void(_ invoice: Invoice, _ record: inout OutboxRecord) async throws {
        let send = try await store.outbox(tenantId: record.tenantId, invoiceId: record.invoiceId).first {
            $0.kind == .send
        }
        switch send?.state {
        case .pending?:
            // Not ended yet: looked at again once the send has had its turn.
            record.nextAttemptAt = clock.now().addingTimeInterval(Double(settings.retryBaseMs) / 1000)
            record.updatedAt = clock.now()
            return try await store.updateOutbox(record)
        case .failed?:
            return try await stop(&record, .failed, "the invoice's hand-off to Stripe failed; nothing was voided there")
        default: break
        }
        let sent = StripeProgress(stored: send?.progress ?? "{}")
        var progress = StripeProgress(stored: record.progress)
        progress.customer = sent.customer
        progress.invoice = sent.invoice
        progress.finalized = sent.finalized
        progress.paid = sent.paid
        while let request = StripeHandoff.next(voiding: invoice, progress: progress) {
            guard let next = try await step(request, invoice: invoice, progress: progress, &record) else { return }
            progress = next
        }
        try await stop(&record, .done, nil)
    }

    /// Sends one step. The progress after it (stored), or nil when the hand-off stops here for now (a retry is
    /// scheduled) or for good (failed).
    private func step(
        _ request: StripeRequest, invoice: Invoice, progress: StripeProgress, _ record: inout OutboxRecord
    ) async throws -> StripeProgress? {
        switch await transport.send(request) {
        case .answered(let answer):
            let next: StripeProgress
            do { next = try StripeHandoff.advance(progress, after: request, answer: answer, invoice: invoice) } catch {
                try await stop(&record, .failed, error.description, progress: progress)
                return nil
            }
            record.progress = JSONCodec.string(next.json)
            record.attempts = 0
            record.lastError = nil
            record.updatedAt = clock.now()
            try await store.updateOutbox(record)
            return next
        case .retry(let message):
            record.attempts += 1
            let wait = Self.backoffMs(attempts: record.attempts, settings: settings)
            record.nextAttemptAt = clock.now().addingTimeInterval(Double(wait) / 1000)
            record.lastError = message
            record.updatedAt = clock.now()
            try await store.updateOutbox(record)
            logger.warning(
                "Stripe hand-off will be retried",
                metadata: [
                    "invoice": "\(invoice.id)", "step": "\(request.step)", "attempts": "\(record.attempts)",
                    "retryInMs": "\(wait)", "error": "\(message)",
                ])
            return nil
        case .rejected(let message):
            try await stop(&record, .failed, message, progress: progress)
            return nil
        }
    }

    private func stop(
        _ record: inout OutboxRecord, _ state: OutboxRecord.State, _ error: String?, progress: StripeProgress? = nil
    ) async throws {
        record.state = state
        record.lastError = error
        if let progress { record.progress = JSONCodec.string(progress.json) }
        record.updatedAt = clock.now()
        try await store.updateOutbox(record)
        if state == .failed {
            logger.error(
                "Stripe hand-off failed", metadata: ["invoice": "\(record.invoiceId)", "error": "\(error ?? "")"])
        }
    }
}
