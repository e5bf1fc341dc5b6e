import ArgumentParser
import Field
import Foundation
import Hub

func nowMilliseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

/// Lifecycle refusals are bad input for the command line (exit 65), said plainly.
func lifecycleErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try hubErrors(body)
    } catch let refusal as LifecycleRefusal {
        FileHandle.standardError.write(Data("satchel-hub: error: \(TerminalText.safe(refusal.description, multiline: true))\n".utf8))
        throw ExitCode(65)
    }
}

struct TechnicianCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "technician", abstract: "Technicians and the credentials they provision handhelds with.",
                                                    subcommands: [Add.self, Revoke.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a technician; prints the credential once (the hub keeps only its hash).")
        @OptionGroup var database: DatabaseOption
        @Option var id: String
        @Option var name: String
        @Option(help: "Days the credential is valid (0: no expiry).") var expiresDays: Int = 90

        func run() throws {
            guard expiresDays >= 0 else { throw ValidationError("--expires-days: 0 (no expiry) or more") }
            let now = nowMilliseconds()
            let credential = try lifecycleErrors {
                try database.openOffice().addTechnician(id: id, name: name, expiresAt: expiresDays == 0 ? nil : now + Int64(expiresDays) * 86_400_000, now: now)
            }
            print("Added technician \(TerminalText.safe(id)) (\(TerminalText.safe(name)))\(expiresDays == 0 ? "" : ", valid \(expiresDays) days")")
            print("Credential (shown once, give it to the technician): \(credential)")
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Refuse a technician's credential from now on.")
        @OptionGroup var database: DatabaseOption
        @Option var id: String

        func run() throws {
            try lifecycleErrors { try database.openOffice().revokeTechnician(id: id, now: nowMilliseconds()) }
            print("Revoked technician \(TerminalText.safe(id))")
        }
    }
}

extension DeviceCommand {
    struct Lost: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Report a device lost or stolen: refused from now on; at its next contact it destroys its keys (its data and card become unreadable).")
        @OptionGroup var database: DatabaseOption
        @Argument(help: "The device id.") var device: String

        func run() throws {
            try lifecycleErrors { try database.openOffice().markLost(device: device, now: nowMilliseconds()) }
            print("Device \(TerminalText.safe(device)) reported lost: refused from now on; it wipes itself at its next contact with the hub")
        }
    }

    struct Policy: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The offline policy every handheld gets with its next sync: lock after N days without reaching the hub, wipe after M.")
        @OptionGroup var database: DatabaseOption
        @Option(help: "Days without a sync before a handheld locks (0: never).") var lockAfterDays: Int
        @Option(help: "Days without a sync before it wipes itself (0: never; later than the lock).") var wipeAfterDays: Int

        func run() throws {
            try lifecycleErrors { try database.openOffice().setOfflinePolicy(lockAfterDays: lockAfterDays, wipeAfterDays: wipeAfterDays, now: nowMilliseconds()) }
            print("Offline policy: lock after \(lockAfterDays) days, wipe after \(wipeAfterDays) days without a sync (0: never); handhelds get it at their next sync")
        }
    }

    struct ReleaseKey: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "release-key",
            abstract: "Release a replaced device's escrowed data key to its replacement, sealed to the replacement's key. The technician credential comes on standard input.")
        @OptionGroup var database: DatabaseOption
        @Option(help: "The replaced device.") var device: String
        @Option(help: "The replacement (registered with --replaces DEVICE).") var to: String
        @Flag var json = false

        func run() throws {
            let credential = try readSecretLine("technician credential")
            let released = try lifecycleErrors { try database.openOffice().releaseEscrow(of: device, to: to, credential: credential, now: nowMilliseconds()) }
            if json { return try printJSON(released) }
            print(released.sealedKey)
            FileHandle.standardError.write(Data("satchel-hub: the key of \(TerminalText.safe(device)) (key check \(released.keyCheck)) is sealed to \(TerminalText.safe(to)): only that handheld opens it\n".utf8))
        }
    }

    struct Events: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Devices' lifecycle history (provisioned, escrowed, lost, wipe ordered, retired, keys released), newest first.")
        @OptionGroup var database: DatabaseOption
        @Option var device: String?
        @Option var limit: Int = 100
        @Flag var json = false

        func run() throws {
            let events = try lifecycleErrors { try database.openOffice().lifecycleEvents(device: device, limit: limit) }
            if json { return try printJSON(events) }
            let safe = { (text: String?) in TerminalText.safe(text ?? "-") }
            for event in events {
                print("\(readableTime(event.at))  \(safe(event.device))  \(safe(event.technician))  \(safe(event.event))  \(safe(event.detail))")
            }
        }
    }
}
