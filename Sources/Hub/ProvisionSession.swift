import Foundation
import Seal
import Sync
import Transport

extension SyncServer {
    /// Provision mode (docs/protocol.md §10): REGISTER with a technician's credential; the hub
    /// registers the device (or confirms the same identity again), answers REGISTERED with the
    /// signed assignment and its escrow key, and stores the ESCROW that follows. A refusal is an
    /// ERROR 12 with what to do, and the audit entry says the same.
    func provision(_ channel: SyncChannel, device: String, publicKey: [UInt8], lifecycle: (any DeviceLifecycleStore)?, deadline: Deadline,
                   entry: inout AuditEntry) throws {
        guard let lifecycle else {
            throw SessionRefusal.registrationRefused("this hub's storage keeps no device lifecycle: register the device with `satchel-hub device add`")
        }
        let message = try channel.receive(deadline: deadline)
        guard message.type == MessageType.register.rawValue else {
            throw SessionRefusal.registrationRefused("expected REGISTER, got message \(message.type)")
        }
        let registration = try Register.decode(message.body)
        entry.rep = registration.rep
        do {
            // The credential's Argon2id (64 MiB) through the sync passwords' gate: a mass
            // provisioning waits its turn instead of growing the hub by 64 MiB a session.
            let waitUntil = passwordWait(deadline)
            try lifecycle.register(device: device, publicKey: publicKey, registration, now: now(),
                                   check: { [passwords] in try passwords.verify($0, password: $1, until: waitUntil) })
        } catch let refusal as LifecycleRefusal {
            throw SessionRefusal.registrationRefused(refusal.description)
        } catch let busy as PasswordGate.Busy {
            refuseBusy(busy, on: channel, deadline: deadline, entry: &entry)
            return
        }
        let keys = try lifecycle.lifecycleKeys()
        let assignment = SignedAssignment.sign(try lifecycle.assignment(device: device, now: now()), with: keys.signing)
        try channel.send(.init(type: MessageType.registered.rawValue, body: Registered(assignment: assignment, escrowKey: keys.escrow.publicKey).encode()),
                         deadline: deadline)
        while true {
            let next = try channel.receive(deadline: deadline)
            switch MessageType(rawValue: next.type) {
            case .escrow:
                do {
                    try lifecycle.depositEscrow(device: device, try EscrowDeposit.decode(next.body), now: now())
                } catch let refusal as LifecycleRefusal {
                    throw SessionRefusal.registrationRefused(refusal.description)
                }
                try channel.send(.init(type: MessageType.escrowed.rawValue, body: []), deadline: deadline)
            case .bye:
                entry.result = "ok"
                return
            default:
                throw SessionRefusal.registrationRefused("unexpected message \(next.type) while provisioning")
            }
        }
    }
}
