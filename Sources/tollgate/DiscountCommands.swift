import ArgumentParser
import Foundation
import TollgateJSON

/// `tollgate discounts create | list | end`.
struct Discounts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Discounts on a customer's invoices.",
        discussion: """
            A discount applies to each period it is in force at the end of, after credit and before tax: a
            percentage of what credit left to pay, or a fixed amount off each period.
            """,
        subcommands: [Create.self, List.self, End.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Give a customer a discount.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The customer id.") var customerId: String
        @Option(name: .long, help: "Percent off (12.5 is 12.5 %).") var percentOff: String?
        @Option(name: .long, help: "A fixed amount off each period.") var amountOff: String?
        @Option(name: .long, help: "The amount's currency (default: the customer's plan's).") var currency: String?
        @Option(name: .long, help: "When it starts (RFC 3339; default now).") var startsAt: String?
        @Option(name: .long, help: "When it ends (RFC 3339; default never).") var endsAt: String?
        @Option(name: .long, help: "Shown on the invoice's discount line.") var description: String?
        @Option(name: .long, help: "Makes a retry harmless.") var idempotencyKey: String?
        func validate() throws {
            guard (percentOff == nil) != (amountOff == nil) else {
                throw ValidationError("give --percent-off or --amount-off (one of them)")
            }
        }
        func run() async throws {
            var params: [String: JSONValue] = ["customerId": .string(customerId)]
            params.set("percentOff", percentOff)
            params.set("amountOff", amountOff)
            params.set("currency", currency)
            params.set("startsAt", startsAt)
            params.set("endsAt", endsAt)
            params.set("description", description)
            params.set("idempotencyKey", idempotencyKey)
            try await options.call("discounts.create", params)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A customer's discounts, the oldest first.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The customer id.") var customerId: String
        func run() async throws { try await options.call("discounts.list", ["customerId": .string(customerId)]) }
    }

    struct End: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "End a discount: it applies to no period ending after that.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The discount id.") var discountId: String
        @Option(name: .long, help: "When (RFC 3339; default now).") var endsAt: String?
        func run() async throws {
            var params: [String: JSONValue] = ["discountId": .string(discountId)]
            params.set("endsAt", endsAt)
            try await options.call("discounts.end", params)
        }
    }
}
