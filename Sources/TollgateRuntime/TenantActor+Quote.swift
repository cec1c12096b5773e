import Foundation
import TollgateCore
import TollgatePricing

/// `meter.quote`: what each of some tools would cost the calling agent if it called it now — its marginal price
/// where the month's running totals stand, in its session — so that an agent can pick the cheaper tool. A quote
/// records nothing, holds nothing and opens no session; the price a later call pays is its own (other calls may
/// come between, and a tier may be crossed meanwhile).
extension TenantActor {
    public func quote(
        tools: [String], sessionId: String, usage: RatedEvent, product: String? = nil, credentialId: String
    ) async throws(TollgateError) -> PriceQuote {
        let credential = try meterCredential(credentialId)
        let caller = try directory.agent(credential.agentId)
        if let session = sessions[sessionId], session.record.agentId != caller.id {
            throw .forbidden("session \(sessionId) belongs to another agent")
        }
        let at = now
        let pricing = try directory.pricing(for: credential, product: product, at: at)
        for tool in tools { try pricing.check(tool: tool) }
        let rating = try await rating(for: pricing.subscription, plan: pricing.plan, at: at)
        var prices: [PriceQuote.Price] = []
        for tool in tools {
            var event = usage
            event.tool = tool
            event.agentId = pricing.agent.id
            event.sessionId = sessionId
            do { prices.append(PriceQuote.Price(tool: tool, price: try rating.quote(event).price)) } catch {
                throw .validation(field: "usage", rule: "small enough that the price stays within range")
            }
        }
        return PriceQuote(currency: pricing.plan.currency, quantity: usage.quantity, prices: prices, at: at)
    }
}
