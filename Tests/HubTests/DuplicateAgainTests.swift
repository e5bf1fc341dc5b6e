import Agent
import Field
import Hub
import SatchelTesting
import Seal
import Sync
import Testing
import Store

/// Issue 10, reproduction 10, on the handheld's side: the copy of a replaced handheld's documents
/// never overwrites what the new handheld changed itself, whatever the hub sends.
@Suite("Duplicate again: the new handheld's own changes stand", .serialized)
struct DuplicateAgainTests {
    @Test("a copied order the new handheld moved on itself keeps its state when the copy comes again; a copy it never touched is refreshed")
    func ownChangesStand() throws {
        let setup = try DownloadTests.Setup()
        _ = try setup.sync(.initialise)
        // The old handheld, loaded from the same hub, with two confirmed orders.
        let key = X25519.KeyPair.generate()
        try setup.storage.addDevice(id: "OLD1", rep: "R07", publicKey: key.publicKey, now: 0)
        let old = try DeviceDatabase.create(home: setup.directory.path + "/old", deviceID: "OLD1", repID: "R07", clock: ManualClock(DownloadTests.now))
        _ = try BadMasterDataTests.sync(setup, key, old, "OLD1", "sync-hasło", .initialise)
        let capture = Capture(old)
        let first = try capture.createOrder(customerID: "CBG100001", lines: [OrderLineRequest(partNumber: "PN-10001", quantity: 2)], confirm: true,
                                            note: "Доставка в четверг").document.id
        let second = try capture.createOrder(customerID: "CBG100002", lines: [OrderLineRequest(partNumber: "PN-10002", quantity: 1)], confirm: true).document.id
        let download = DeviceDownload(setup.device)
        #expect(try download.documents(Batch(id: "copy-1", changes: try old.changes(after: 0))) == 2)

        // The new handheld moves the first copy on; the old one (its card, uploaded late) had moved the second.
        _ = try Capture(setup.device).advanceOrder(first, to: .sent)
        _ = try capture.advanceOrder(second, to: .sent)
        let stored = try download.documents(Batch(id: "copy-2", changes: try old.changes(after: 0)))
        #expect(stored == 2)   // the second order's two changes; the first order is this device's now
        let state = { (id: String) in try setup.device.database.text("SELECT state FROM orders WHERE id = ?", [.text(id)]) }
        #expect(try state(first) == "sent")
        #expect(try state(second) == "sent")
        #expect(try setup.device.database.text("SELECT note FROM orders WHERE id = ?", [.text(first)]) == "Доставка в четверг")
        #expect(try setup.device.changes(after: 0).map(\.entityId) == [first])
    }
}
