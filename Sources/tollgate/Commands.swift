import ArgumentParser
import Foundation
import TollgateCore
import TollgateJSON

struct Hello: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Authenticate and show who the token belongs to.")
    @OptionGroup var options: GlobalOptions
    func run() async throws {
        let result = try await options.request("auth.hello", [:], tenantScoped: false)
        try Output.print(result["principal"] ?? result, json: options.json, field: options.get)
    }
}

struct Tenants: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Tenants (root operator).", subcommands: [Create.self, List.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a tenant; prints its operator token once.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The tenant's name.") var name: String
        func run() async throws {
            try await options.call(
                "tenants.create", ["name": .string(name)], tenantScoped: false, secret: "operatorToken")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tenants.")
        @OptionGroup var options: GlobalOptions
        func run() async throws { try await options.call("tenants.list", [:], tenantScoped: false) }
    }
}

struct Customers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Customers.", subcommands: [Create.self, Update.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a customer.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The customer's name.") var name: String
        @Option(name: .long, help: "Your own id for this customer.") var externalId: String?
        @Option(
            name: .long,
            help: "The IANA time zone its billing periods start at midnight in (e.g. Europe/Paris; default UTC).")
        var timeZone: String?
        @Option(name: .long, help: "The tax rate its invoices add (0.2 is 20 %; default 0).") var taxRate: String?
        @Flag(name: .long, help: "Refuse its calls once its credit cannot pay for them (a prepaid customer).")
        var blockAtZeroCredit = false
        func run() async throws {
            var params: [String: JSONValue] = ["name": .string(name)]
            params.set("externalId", externalId)
            params.set("timeZone", timeZone)
            params.set("taxRate", taxRate)
            if blockAtZeroCredit { params["blockAtZeroCredit"] = true }
            try await options.call("customers.create", params)
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a customer's name, tax rate (for periods closed from now on) or credit blocking.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The customer id.") var customerId: String
        @Option(name: .long, help: "Its new name.") var name: String?
        @Option(name: .long, help: "Its new tax rate (0.2 is 20 %).") var taxRate: String?
        @Option(
            name: .long,
            help: "true: refuse its calls once its credit cannot pay for them; false: charge them past zero.")
        var blockAtZeroCredit: Bool?
        @Option(name: .long, help: "Makes a retry of this update harmless.") var idempotencyKey: String?
        func run() async throws {
            var params: [String: JSONValue] = ["customerId": .string(customerId)]
            params.set("name", name)
            params.set("taxRate", taxRate)
            params.set("idempotencyKey", idempotencyKey)
            if let blockAtZeroCredit { params["blockAtZeroCredit"] = .bool(blockAtZeroCredit) }
            try await options.call("customers.update", params)
        }
    }
}

struct Teams: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Teams.", subcommands: [Create.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a team under a customer.")
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "The customer id.") var customer: String
        @Argument(help: "The team's name.") var name: String
        func run() async throws {
            try await options.call("teams.create", ["customerId": .string(customer), "name": .string(name)])
        }
    }
}

struct Plans: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rate plans.", subcommands: [Put.self, List.self, Show.self, Diff.self, Simulate.self])

    struct Put: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put a plan document (JSON file); makes the next version of its name.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "Path of the plan's JSON file.") var file: String
        func run() async throws {
            guard let data = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read \(file)") }
            let document: JSONValue
            do { document = try JSONCodec.parse(Array(data)) } catch {
                throw CLIError("\(file) is not valid JSON: \(error)")
            }
            guard let object = document.objectValue else { throw CLIError("\(file) must hold a JSON object") }
            try await options.call("plans.put", object)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List plan versions.")
        @OptionGroup var options: GlobalOptions
        func run() async throws { try await options.call("plans.list", [:]) }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one plan version (the latest by default).")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The plan id.") var planId: String
        @Option(name: .long, help: "The version.") var version: Int?
        func run() async throws {
            var params: [String: JSONValue] = ["planId": .string(planId)]
            params.set("version", version)
            try await options.call("plans.get", params)
        }
    }
}

struct Subscriptions: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Subscriptions.", subcommands: [Create.self, Swap.self])

    struct Swap: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Swap a subscription's plan version, now or from a future time; calls before it keep their prices.")
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "The subscription id.") var subscription: String
        @Option(name: .long, help: "The plan id (default: the subscription's current plan).") var plan: String?
        @Option(name: .long, help: "The plan version (default: the plan's latest).") var version: Int?
        @Option(name: .long, help: "When it takes effect (RFC 3339, in the future; default now).") var effectiveAt:
            String?
        func run() async throws {
            var params: [String: JSONValue] = ["subscriptionId": .string(subscription)]
            params.set("planId", plan)
            params.set("version", version)
            params.set("effectiveAt", effectiveAt)
            try await options.call("subscriptions.swap", params)
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Subscribe a customer to a plan version (latest by default).")
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "The customer id.") var customer: String
        @Option(name: .long, help: "The plan id.") var plan: String
        @Option(name: .long, help: "The plan version.") var version: Int?
        @Option(name: .long, help: "When it starts (RFC 3339; default now).") var startsAt: String?
        @Option(name: .long, help: "How often its billing periods turn over: month (default), week or day.")
        var period: String?
        @Option(name: .long, help: "Monthly periods: the day of the month they start on (1-31; default 1).")
        var anchorDay: Int?
        @Option(name: .long, help: "Weekly periods: the weekday they start on (monday-sunday; default monday).")
        var anchorWeekday: String?
        @Option(name: .long, help: "The product subscribed to (its id or name).") var product: String?
        func run() async throws {
            var params: [String: JSONValue] = ["customerId": .string(customer), "planId": .string(plan)]
            params.set("productId", product)
            params.set("version", version)
            params.set("startsAt", startsAt)
            if period != nil || anchorDay != nil || anchorWeekday != nil {
                var fields: [String: JSONValue] = [:]
                fields.set("cadence", period)
                fields.set("anchorDay", anchorDay)
                fields.set("anchorWeekday", anchorWeekday)
                params["period"] = .object(fields)
            }
            try await options.call("subscriptions.create", params)
        }
    }
}

struct Caps: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Spend caps.", subcommands: [Set.self, List.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the tenant's caps with what each has counted so far.")
        @OptionGroup var options: GlobalOptions
        func run() async throws { try await options.call("caps.list", [:]) }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set the cap of a customer, team or agent for a period.")
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "customer, team, agent or session.") var scope: String
        @Option(name: .long, help: "The id of the customer, team, agent or session.") var id: String
        @Option(name: .long, help: "The limit, a decimal amount in the plan's currency.") var limit: String
        @Option(name: .long, help: "lifetime, month, day, or session (each session under the scope gets the limit).")
        var period: String = "month"
        @Option(name: .long, help: "Warn at this percentage of the limit.") var warnAt: Int?
        func run() async throws {
            var params: [String: JSONValue] = [
                "scope": .string(scope), "scopeId": .string(id), "limit": .string(limit),
                "period": .string(period),
            ]
            params.set("warnAtPercent", warnAt)
            try await options.call("caps.set", params)
        }
    }
}

struct Usage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Usage reports, and re-rating a period.", subcommands: [Summary.self, Rerate.self])

    struct Summary: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Usage and cost, filtered and grouped.")
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "Group by tool, agent, session, team, customer, day or model (repeatable).")
        var groupBy: [String] =
            []
        @Option(name: .long) var customer: String?
        @Option(name: .long) var team: String?
        @Option(name: .long) var agent: String?
        @Option(name: .long, help: "From this time (RFC 3339, inclusive).") var from: String?
        @Option(name: .long, help: "To this time (RFC 3339, exclusive).") var to: String?
        func run() async throws {
            var params: [String: JSONValue] = ["groupBy": .array(groupBy.map(JSONValue.string))]
            params.set("customerId", customer)
            params.set("teamId", team)
            params.set("agentId", agent)
            params.set("from", from)
            params.set("to", to)
            try await options.call("usage.summary", params)
        }
    }

    struct Rerate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rate a customer's period again under a plan version and show what would change.",
            discussion: """
                Every event of the period (from inclusive, to exclusive) is rated again, in the order it was
                recorded, from fresh running totals (use a billing period's bounds: a UTC month). Prints each
                event whose amount would change — what it was charged, adjustments included, and what it is
                now — and the totals. Nothing changes unless --apply is given: then each difference is recorded
                as an adjustment (a charge, or a credit when negative) with its provenance, once: applying the
                same re-rating again changes nothing. The events' sessions must be closed.
                """)
        @OptionGroup var options: GlobalOptions
        @Option(name: .long) var customer: String
        @Option(name: .long, help: "From this time (RFC 3339, inclusive).") var from: String
        @Option(name: .long, help: "To this time (RFC 3339, exclusive).") var to: String
        @Option(name: .long, help: "The plan version to rate with: NAME@VERSION.") var plan: String
        @Flag(name: .long, help: "Record the differences as adjustments.") var apply = false
        func run() async throws {
            try await options.call(
                "usage.rerate",
                [
                    "customerId": .string(customer), "from": .string(from), "to": .string(to), "plan": .string(plan),
                    "apply": .bool(apply),
                ])
        }
    }
}

struct Meter: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Meter calls as an agent (with an AGT- token).",
        subcommands: [Verify.self, Quote.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Price, cap-check and record one tool call.")
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "The tool's name.") var tool: String
        @Option(name: .long, help: "Idempotency key: retrying with the same key never charges twice.") var key: String
        @Option(name: .long, help: "Session id.") var session: String?
        @Option(name: .long, help: "Units used (default 1).") var quantity: Int?
        func run() async throws {
            var params: [String: JSONValue] = ["tool": .string(tool), "idempotencyKey": .string(key)]
            params.set("sessionId", session)
            params.set("quantity", quantity)
            try await options.call("meter.verify", params, tenantScoped: false)
        }
    }

    struct Quote: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "This agent's current price of one call of each tool; records nothing.")
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "A tool's name (repeatable).") var tool: [String]
        @Option(name: .long, help: "Session id (a bundle fee counts in a session not opened yet).") var session: String?
        @Option(name: .long, help: "Units per call (default 1).") var quantity: Int?
        func run() async throws {
            var params: [String: JSONValue] = ["tools": .array(tool.map(JSONValue.string))]
            params.set("sessionId", session)
            params.set("quantity", quantity)
            try await options.call("meter.quote", params, tenantScoped: false)
        }
    }
}
