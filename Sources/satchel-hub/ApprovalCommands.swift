import ArgumentParser
import Field
import Foundation
import Hub
import HubAdmin

/// Approvals by hierarchy from the command line (docs/office-guide.md#approval-limits): the
/// limits per role, the queue an office user may decide, and the decisions, through the same
/// OfficeDesk as the admin API and the office web page, so all three refuse the same things.
struct ApprovalsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approvals", abstract: "Quotes and orders waiting for approval, the limits per role, and the decisions.",
        subcommands: [List.self, Approve.self, Reject.self, Limits.self, SetLimit.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "What waits for approval: with --for, only what that office user may decide (territory and limits); else everything, with who it goes to.")
        @OptionGroup var database: DatabaseOption
        @Option(name: .customLong("for"), help: "The office user whose queue to show.") var user: String?
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let desk = OfficeDesk(openStorage: { [database] in try database.openOffice() })
            let queue = try deskErrors {
                let who = try user.map { try officeUser($0, database) } ?? OfficeUser(name: "office", role: .office, territory: nil)
                return try desk.approvals(for: who, everything: user == nil).map { ($0, try desk.approvers(of: $0)) }
            }
            if json { return try printJSON(queue.map(\.0)) }
            if queue.isEmpty { print("Nothing waits for an approval\(user.map { " that \(TerminalText.safe($0)) may decide" } ?? "")") }
            for (document, approvers) in queue {
                let safe = { (text: String?) in TerminalText.safe(text ?? "-") }
                let value = document.totalMinor.map { Money.format($0, document.currency ?? "") } ?? "-"
                let discount = document.discountBasisPoints.map { "  discount \(Percent.format($0))" } ?? ""
                print("\(safe(document.entity)) \(safe(document.id))  device \(safe(document.device))  rep \(safe(document.rep))  customer \(safe(document.customer))  \(value)\(discount)")
                print("    needs \(safe(document.needs)) (goes to \(approvers.isEmpty ? "no office user yet" : approvers.map { TerminalText.safe($0) }.joined(separator: ", ")))  held: \(safe(document.holdReason))")
            }
        }
    }

    struct Decision: ParsableArguments {
        @OptionGroup var database: DatabaseOption
        @Argument(help: "The quote's or order's id (as the device made it).") var id: String
        @Option(name: .customLong("as"), help: "The office user deciding: their territory and limits apply.") var user: String
        @Option(help: "Why (at most 500 characters); it is logged with the decision.") var reason: String
        @Option(help: "The device that sent it, when the id alone is not enough.") var device: String?

        func decide(_ decision: OfficeDecision) throws {
            let desk = OfficeDesk(openStorage: { [database] in try database.openOffice() })
            let decided = try deskErrors {
                let who = try officeUser(user, database)
                let storage = try database.openOffice()
                let matches = try storage.officeDocuments(DocumentFilter(limit: 1_000_000))
                    .filter { ($0.entity == "quote" || $0.entity == "order") && $0.id == id && (device == nil || $0.device == device) }
                guard let document = matches.first else { throw OfficeDesk.Refusal.notFound("quote or order \(id)\(device.map { " of device \($0)" } ?? "") (the hub has not received it)") }
                guard matches.count == 1 else {
                    throw OfficeDesk.Refusal.invalid("\(id) names \(matches.count) documents (devices \(matches.map(\.device).joined(separator: ", "))): give --device")
                }
                return try desk.decide(decision, device: document.device, entity: document.entity, id: id, reason: reason, by: who)
            }
            print("\(TerminalText.safe(decided.entity)) \(TerminalText.safe(decided.id)) of \(TerminalText.safe(decided.device)): \(TerminalText.safe(decided.approval ?? "-")); the device gets it with its next sync")
        }
    }

    struct Approve: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Approve a quote or a held order (refused when it is over your limits or outside your territory).")
        @OptionGroup var decision: Decision
        func run() throws { try decision.decide(.approve) }
    }

    struct Reject: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reject a quote or a held order (the same rule as approve).")
        @OptionGroup var decision: Decision
        func run() throws { try decision.decide(.reject) }
    }

    struct Limits: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The approval limits per role and currency (unset ones have the defaults).")
        @OptionGroup var database: DatabaseOption

        func run() throws {
            let limits = try hubErrors { try database.openStorage().approvalLimits() }
            let rule = ApprovalRule(limits: limits)
            let currencies = Swift.Set(limits.map(\.currency)).sorted()
            print("Defaults (a currency without limits): rep \(Percent.format(ApprovalRule.defaultDiscountBasisPoints[.rep]!)) discount, supervisor and sales manager any; no value limit")
            for currency in currencies {
                for role in ApprovalLevel.limited {
                    let limit = rule.limit(role, currency: currency)
                    print("\(currency) \(role.rawValue): discount up to \(Percent.format(limit.maxDiscountBasisPoints)), value up to \(limit.maxTotalMinor.map { Money.format($0, currency) } ?? "any")")
                }
            }
        }
    }

    struct SetLimit: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-limit",
            abstract: "Set a role's limits in a currency: the highest discount and document value it may let through. Devices get them with their next sync.")
        @OptionGroup var database: DatabaseOption
        @Option(help: "rep, supervisor or sales_manager.") var role: String
        @Option(help: "The currency the value limit is in (PLN, BGN, RUB...).") var currency: String
        @Option(help: "The highest discount, in percent (12.5).") var discount: String
        @Option(help: "The highest quote or order value (50000.00); leave out for none.") var value: String?

        func run() throws {
            guard let level = ApprovalLevel(rawValue: role), ApprovalLevel.limited.contains(level) else {
                throw ValidationError("--role \(role): one of rep, supervisor, sales_manager")
            }
            let limit = try hubErrors {
                let parsed = { (text: String, what: String) throws -> Int64 in
                    do { return try Money.parseMinor(text, what: what) } catch { throw HubError.invalid("--\(what) \(TerminalText.safe(text)): \(error)") }
                }
                return ApprovalLimit(role: level, currency: currency, maxDiscountBasisPoints: try parsed(discount, "discount"),
                                     maxTotalMinor: try value.map { try parsed($0, "value") })
            }
            try hubErrors { try database.openStorage().setApprovalLimit(limit, now: SyncServer.systemNow()) }
            print("\(currency) \(role): discount up to \(Percent.format(limit.maxDiscountBasisPoints)), value up to \(limit.maxTotalMinor.map { Money.format($0, currency) } ?? "any")")
        }
    }
}

/// The office user of that name, or not found.
func officeUser(_ name: String, _ database: DatabaseOption) throws -> OfficeUser {
    guard let user = try database.openOffice().officeUsers().first(where: { $0.name == name }) else {
        throw OfficeDesk.Refusal.notFound("office user \(name) (add it: satchel-hub user add)")
    }
    return user
}

/// Runs an office-desk call from the command line: a refusal is printed (escaped) with the exit
/// code of its kind, and nothing was changed.
func deskErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try hubErrors(body)
    } catch let refusal as OfficeDesk.Refusal {
        FileHandle.standardError.write(Data("satchel-hub: error: \(TerminalText.safe(refusal.description, multiline: true))\n".utf8))
        switch refusal {
        case .unauthenticated, .forbidden: throw ExitCode(77)
        case .notFound: throw ExitCode(66)
        case .invalid: throw ExitCode(65)
        case .storage: throw ExitCode(74)
        }
    }
}
