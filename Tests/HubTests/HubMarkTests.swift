import Agent
import Field
import Foundation
import Hub
import SatchelTesting
import Seal
import Store
import Sync
import Testing

/// The hub's high-water mark for a device (AUTH_RESULT, issue 10): the first sync after something
/// went back in time learns what the hub holds, so nothing the hub lacks is skipped and no id the
/// hub holds is issued again. The device side is the real `DeviceSync`.
@Suite("The hub's high-water mark corrects the device's upload position and epoch", .serialized)
struct HubMarkTests {
    func provisioned(_ setup: DownloadTests.Setup) throws -> DeviceSync {
        let home = setup.directory.path + "/device"
        FileManager.default.createFile(atPath: home + "/device.key", contents: Data(setup.deviceKey.secretKey.withUnsafeBytes { Array($0) }))
        let sync = DeviceSync(DeviceAgent(AgentConfiguration(home: home)))
        try sync.provision(address: "127.0.0.1:1", hubKey: Hex.encode(try setup.storage.hubKey().publicKey))
        return sync
    }

    func fast(_ setup: DownloadTests.Setup, _ sync: DeviceSync) throws -> DeviceSync.Report {
        try setup.server.inProcessSession { end in try sync.run(.fast, setup.device, password: "sync-hasło", over: end, hub: "in-process") }
    }

    func visits(_ setup: DownloadTests.Setup, _ count: Int) throws -> [String] {
        try (0..<count).map { index in
            try Capture(setup.device).recordVisit(customerID: "CBG10000\(index)", outcome: .noOrder, note: "Wizyta \(index) — визит").document.id
        }
    }

    @Test("a hub restored from an older backup: the device moves its upload position back and sends again what the hub lost")
    func hubLostChanges() throws {
        let setup = try DownloadTests.Setup()
        _ = try setup.sync(.initialise)
        let sync = try provisioned(setup)
        _ = try visits(setup, 3)
        #expect(try fast(setup, sync).uploaded == 3)
        _ = try visits(setup, 2)
        #expect(try fast(setup, sync).uploaded == 2)
        #expect(try setup.device.uploadedThroughSeq() == 5)
        // The office restores the hub from last night's copy: the two newest changes are gone.
        try Database(path: setup.hubPath).execute(script: dropHubHistoryTriggers)  // the copy predates them; the hub's code never deletes
        try setup.hub("DELETE FROM device_changes WHERE seq > 3")
        try setup.hub("DELETE FROM receipts WHERE through_seq > 3")
        #expect(try setup.storage.changeCount(device: "BG03") == 3)
        let learnt = try fast(setup, sync)
        #expect(learnt.uploaded == 0)
        #expect(try setup.device.uploadedThroughSeq() == 3)
        let resent = try fast(setup, sync)
        #expect(resent.uploaded == 2 && resent.duplicates == 0)
        #expect(try setup.storage.changeCount(device: "BG03") == 5)
    }

    @Test("a device whose epoch is behind the hub's (its card was rolled back) moves past the hub's before issuing more ids")
    func epochBehindTheHub() throws {
        let setup = try DownloadTests.Setup()
        _ = try setup.sync(.initialise)
        let sync = try provisioned(setup)
        try setup.device.database.execute("UPDATE device SET epoch = 3")
        let issued = try visits(setup, 1)
        #expect(issued.allSatisfy { $0.hasPrefix("BG03~3-") })
        #expect(try fast(setup, sync).uploaded == 1)
        try setup.device.database.execute("UPDATE device SET epoch = 2")
        _ = try fast(setup, sync)
        #expect(try setup.device.epoch() == 4)
        let next = try visits(setup, 1)
        #expect(next.allSatisfy { $0.hasPrefix("BG03~4-") })
        #expect(try fast(setup, sync).uploaded == 1)
        #expect(try setup.storage.holding(device: "BG03", epoch: 4) == HubHolding(highestEpoch: 4, sequenceInEpoch: 2))   // the journal sequence of its change
    }
}
