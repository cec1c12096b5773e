import ArgumentParser
import Foundation
import TollgateJSON

/// `tollgate credits grant | balance`.
struct Credits: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Credit granted to customers, drawn by their usage.",
        discussion: """
            Usage draws credit as it is charged: the grants active at the call's moment, lowest priority number
            first, then the one expiring soonest. Closing a period turns what each grant paid into a credit line.
            """,
        subcommands: [Grant.self, Balance.self])

    enum Kind: String, ExpressibleByArgument, CaseIterable { case prepaid, promotional }

    struct Grant: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Grant credit to a customer.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The customer id.") var customerId: String
        @Argument(help: "The amount, a decimal (e.g. 25.00).") var amount: String
        @Option(name: .long, help: "prepaid (bought) or promotional (given).") var kind: Kind
        @Option(name: .long, help: "Drawn lowest first (default 0).") var priority: Int?
        @Option(name: .long, help: "When it expires (RFC 3339); what is left then is lost. Default: never.")
        var expiresAt: String?
        @Option(name: .long, help: "ISO 4217 code (default: the currency of the customer's plan).")
        var currency: String?
        @Option(name: .long, help: "Shown on the invoice's credit line.") var description: String?
        @Option(name: .long, help: "Makes a retry of this grant harmless.") var idempotencyKey: String?
        func run() async throws {
            var params: [String: JSONValue] = [
                "customerId": .string(customerId), "amount": .string(amount), "kind": .string(kind.rawValue),
            ]
            if let priority { params["priority"] = .integer(Int64(priority)) }
            params.set("expiresAt", expiresAt)
            params.set("currency", currency)
            params.set("description", description)
            params.set("idempotencyKey", idempotencyKey)
            try await options.call("credits.grant", params)
        }
    }

    struct Balance: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A customer's credit now: what calls can draw, and each grant with what it has left.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The customer id.") var customerId: String
        func run() async throws {
            try await options.call("credits.balance", ["customerId": .string(customerId)])
        }
    }
}
