import ArgumentParser

/// `tollgate`: the operator CLI. Every command is one or two calls over the wire protocol.
@main
struct Tollgate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tollgate",
        abstract: "Operate a Tollgate server: tenants, customers, teams, agents, credentials, plans, caps, usage, "
            + "sessions, alerts, events, billing periods and invoices.",
        discussion: """
            Connects to TOLLGATE_ADDRESS (default 127.0.0.1:7420) with the token in --token or TOLLGATE_TOKEN.
            Results print as readable tables; --json prints the raw result and --get FIELD prints one field (for
            scripts).
            """,
        subcommands: [
            Hello.self, Tenants.self, Operators.self, Customers.self, Teams.self, Agents.self, Credentials.self,
            Plans.self,
            Subscriptions.self, Caps.self, Usage.self, Meter.self, Sessions.self, Alerts.self, Events.self,
            Periods.self, Invoices.self, Reports.self, Credits.self, Discounts.self, Products.self, SigningKeys.self,
        ])
}
