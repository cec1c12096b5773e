import Foundation
import TollgateCore
import TollgateJSON

/// The answer to `meter.quote`: each tool's price for one call of `quantity`, now, for the calling agent.
public struct PriceQuote: JSONRepresentable, Equatable {
    public struct Price: Sendable, Equatable {
        public var tool: String
        public var price: Money
    }

    public var currency: String
    public var quantity: Int64
    public var prices: [Price]
    public var at: Date

    public var json: JSONValue {
        [
            "currency": .string(currency), "at": .string(Timestamp.format(at)),
            "prices": .array(
                prices.map { price in
                    [
                        "tool": .string(price.tool), "amount": .string(price.price.decimalString),
                        "unit": "call", "quantity": .integer(quantity),
                    ]
                }),
        ]
    }
}
