import Foundation
import TollgateCore
import TollgateJSON
import TollgateStorage

/// What `discounts.create` is asked.
public struct DiscountRequest: Sendable {
    public var customerId: String
    /// Percent off (`12.5` is 12.5 %), or nil with `amountOff`.
    public var percentOff: Money?
    public var amountOff: Money?
    /// For `amountOff`; nil: the currency of the customer's subscription in force.
    public var currency: String?
    /// Nil: now.
    public var startsAt: Date?
    public var endsAt: Date?
    public var description: String

    public init(
        customerId: String, percentOff: Money?, amountOff: Money?, currency: String?, startsAt: Date?, endsAt: Date?,
        description: String
    ) {
        self.customerId = customerId
        self.percentOff = percentOff
        self.amountOff = amountOff
        self.currency = currency
        self.startsAt = startsAt
        self.endsAt = endsAt
        self.description = description
    }
}

/// Discounts: `discounts.create`, `discounts.list`, `discounts.end`. The close's discounts stage takes them off
/// (`InvoiceClose.addDiscounts`); a discount is in force for a period when it is as the period ends.
extension TenantActor {
    public func createDiscount(_ request: DiscountRequest, call: KeyedCall?) async throws(TollgateError)
        -> Answer<DiscountView>
    {
        try await keyed(call) { () async throws(TollgateError) in
            _ = try directory.customer(request.customerId)
            let at = now
            let off: Discount.Off
            switch (request.percentOff, request.amountOff) {
            case (let percent?, nil):
                guard percent > .zero, percent <= Money(nanos: 100 * Money.nanosPerUnit) else {
                    throw .validation(field: "percentOff", rule: "a percentage above 0, at most 100")
                }
                off = .percent(percent)
            case (nil, let amount?):
                guard amount > .zero else { throw .validation(field: "amountOff", rule: "an amount above zero") }
                off = .amount(amount, currency: try currency(request.currency, of: request.customerId, at: at))
            default:
                throw .validation(field: "percentOff", rule: "given, or amountOff given, but not both")
            }
            let startsAt = request.startsAt ?? at
            if let endsAt = request.endsAt, endsAt <= startsAt {
                throw .validation(field: "endsAt", rule: "after startsAt (\(Timestamp.format(startsAt)))")
            }
            let discount = Discount(
                id: Identifiers.make(.discount, at: at), tenantId: tenantId, customerId: request.customerId, off: off,
                startsAt: startsAt, endsAt: request.endsAt, description: request.description, createdAt: at)
            let answer = Answer(DiscountView(discount: discount))
            let written = try await write(
                .insertDiscount(discount), answering: answer, for: call, "creating a discount")
            if written == .written { directory.add(discount) }
            return written.answer(answer)
        }
    }

    public func discounts(customerId: String) throws(TollgateError) -> DiscountList {
        _ = try directory.customer(customerId)
        return DiscountList(discounts: directory.discounts(of: customerId))
    }

    /// `discounts.end`: the discount stops at `endsAt` (now by default) — it applies to no period ending after
    /// that. Ending it again, later, changes nothing; earlier, moves its end.
    public func endDiscount(_ id: String, endsAt: Date?, call: KeyedCall?) async throws(TollgateError)
        -> Answer<DiscountView>
    {
        try await keyed(call) { () async throws(TollgateError) in
            guard var discount = directory.discount(id: id) else { throw .notFound("no discount \(id)") }
            let end = endsAt ?? now
            guard end > discount.startsAt else {
                throw .validation(
                    field: "endsAt", rule: "after the discount starts (\(Timestamp.format(discount.startsAt)))")
            }
            if let current = discount.endsAt, current <= end {
                // Ends by then already: answered as it is.
                let answer = Answer(DiscountView(discount: discount))
                guard call != nil else { return answer }
                return try await write(.answerOnly, answering: answer, for: call, "ending a discount").answer(answer)
            }
            discount.endsAt = end
            let answer = Answer(DiscountView(discount: discount))
            let written = try await write(
                .endDiscount(tenantId: tenantId, id: id, endsAt: end), answering: answer, for: call,
                "ending a discount")
            if written == .written { directory.end(discount, at: end) }
            return written.answer(answer)
        }
    }

    /// `given`, or the plan currency of `customerId`'s subscription in force at `date`.
    func currency(_ given: String?, of customerId: String, at date: Date) throws(TollgateError) -> String {
        if let currency = given ?? directory.currency(ofCustomer: customerId, at: date) { return currency }
        throw .validation(field: "currency", rule: "given when the customer has no subscription to take it from")
    }
}

public struct DiscountView: JSONRepresentable, Equatable {
    public var discount: Discount
    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "discountId": .string(discount.id), "customerId": .string(discount.customerId),
            "startsAt": .string(Timestamp.format(discount.startsAt)), "description": .string(discount.description),
            "createdAt": .string(Timestamp.format(discount.createdAt)),
        ]
        switch discount.off {
        case .percent(let percent): fields["percentOff"] = .string(percent.decimalString)
        case .amount(let amount, let currency):
            fields["amountOff"] = .string(amount.decimalString)
            fields["currency"] = .string(currency)
        }
        if let endsAt = discount.endsAt { fields["endsAt"] = .string(Timestamp.format(endsAt)) }
        return .object(fields)
    }
}

public struct DiscountList: JSONRepresentable, Equatable {
    public var discounts: [Discount]
    public var json: JSONValue { ["discounts": .array(discounts.map { DiscountView(discount: $0).json })] }
}
