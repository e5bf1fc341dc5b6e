import Agent
import Field
import Foundation
import Hub
import SatchelTesting
import Store
import Sync
import Testing

/// What a full sync must send whatever the hub remembers of a device (today a per-row shadow;
/// issue 15 asks for a change position per row and a cursor per device): every change since the
/// device's last download and nothing else, the rows a scope change adds and removes, and the
/// whole working set again when the device's memory of its downloads is older than the hub's.
/// Each case ends on the same oracle: a second full sync sends nothing (the hub's memory moved
/// past what it sent), and a reload gives the device exactly what it already holds (a change
/// skipped, a row left behind or a stale value would differ). Both backends.
@Suite("Downloads follow the changes: changed, deleted, out of scope, territory, restored", .serialized)
struct DownloadCursorTests {
    typealias Setup = DownloadTests.Setup

    func count(_ device: DeviceDatabase, _ sql: String) throws -> Int64 {
        try device.database.int64("SELECT count(*) FROM \(sql)")
    }

    /// Nothing more to send, and the incremental result is what a reload gives.
    func expectSameAsReload(_ setup: Setup, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let again = try setup.sync(.full, upload: false)
        #expect(again.downloaded == 0, "a second full sync sent rows again", sourceLocation: sourceLocation)
        #expect(again.mismatched == [], sourceLocation: sourceLocation)
        let incremental = try DeviceDownload(setup.device).checksums()
        let reload = try setup.sync(.initialise, upload: false)
        #expect(reload.mismatched == [], sourceLocation: sourceLocation)
        let reloaded = try DeviceDownload(setup.device).checksums()
        for table in WorkingSetTables.all where incremental[table.id] != reloaded[table.id] {
            Issue.record("\(table.name): incremental \(String(describing: incremental[table.id])), reload \(String(describing: reloaded[table.id]))",
                         sourceLocation: sourceLocation)
        }
    }

    @Test("an ERP extract changing one price and one customer's name: a full sync sends those two rows, nothing else", arguments: Backend.allCases)
    func rowChanged(backend: Backend) throws {
        let setup = try Setup(backend: backend)
        #expect(try setup.sync(.initialise).mismatched == [])
        // The nightly extract replaces every table whole: only the rows whose values differ are changes.
        try setup.erp.database.execute("UPDATE prices SET price_minor = 4242 WHERE part_number = 'PN-10017' AND level = 'dealer'")
        try setup.erp.database.execute("UPDATE customers SET name = 'Sklep „Pod Lipą“ 41' WHERE id = 'CBG100041'")
        try setup.storage.importMasterData(from: setup.erp.path)
        let result = try setup.sync(.full, upload: false)
        #expect(result.mismatched == [])
        #expect(result.downloaded == 2)
        #expect(try setup.device.database.int64("SELECT price_minor FROM prices WHERE part_number = 'PN-10017' AND level = 'dealer'") == 4242)
        #expect(try setup.device.database.text("SELECT name FROM customers WHERE id = 'CBG100041'") == "Sklep „Pod Lipą“ 41")
        try expectSameAsReload(setup)
    }

    @Test("a product deleted from the ERP: the product, its units, prices and stock leave the device, nothing else is sent", arguments: Backend.allCases)
    func rowDeleted(backend: Backend) throws {
        let setup = try Setup(backend: backend)
        #expect(try setup.sync(.initialise).mismatched == [])
        let part = "part_number = 'PN-10140'"  // in no customer's history, so nothing else points at it
        let held = try ["products", "product_units", "prices", "stock"].reduce(Int64(0)) { $0 + (try count(setup.device, "\($1) WHERE \(part)")) }
        #expect(held >= 6)
        for table in ["stock", "prices", "product_units", "products"] { try setup.erp.database.execute("DELETE FROM \(table) WHERE \(part)") }
        try setup.storage.importMasterData(from: setup.erp.path)
        let result = try setup.sync(.full, upload: false)
        #expect(result.mismatched == [])
        #expect(Int64(result.downloaded) == held)
        for table in ["products", "product_units", "prices", "stock"] { #expect(try count(setup.device, "\(table) WHERE \(part)") == 0) }
        try expectSameAsReload(setup)
    }

    @Test("a customer the ERP moves to another territory leaves the device with its price levels and history; moved back, it returns", arguments: Backend.allCases)
    func customerMovedOutOfScope(backend: Backend) throws {
        let setup = try Setup(backend: backend)
        #expect(try setup.sync(.initialise).mismatched == [])
        let customer = "customer_id = 'CBG100040'"  // on no route: the territory alone brings it
        let tables = ["customer_price_levels", "equipment", "open_items", "history_orders", "history_lines"]
        let held = try tables.reduce(Int64(1)) { $0 + (try count(setup.device, "\($1) WHERE \(customer)")) }
        #expect(held >= 4)
        try setup.erp.database.execute("UPDATE customers SET territory_id = 'PL-MAZ' WHERE id = 'CBG100040'")
        try setup.storage.importMasterData(from: setup.erp.path)
        let moved = try setup.sync(.full, upload: false)
        #expect(moved.mismatched == [])
        #expect(Int64(moved.downloaded) == held)
        #expect(try count(setup.device, "customers WHERE id = 'CBG100040'") == 0)
        for table in tables { #expect(try count(setup.device, "\(table) WHERE \(customer)") == 0) }
        try expectSameAsReload(setup)
        // Back in the territory: the same rows come back, and only they.
        try setup.erp.database.execute("UPDATE customers SET territory_id = 'BG-SOF' WHERE id = 'CBG100040'")
        try setup.storage.importMasterData(from: setup.erp.path)
        let back = try setup.sync(.full, upload: false)
        #expect(back.mismatched == [])
        #expect(Int64(back.downloaded) == held)
        #expect(try count(setup.device, "customers WHERE id = 'CBG100040' AND territory_id = 'BG-SOF'") == 1)
        try expectSameAsReload(setup)
    }

    @Test("a rep moved to another territory: its route stops stay, the old territory's other customers leave, the new one's arrive", arguments: Backend.allCases)
    func repTerritoryChanged(backend: Backend) throws {
        let setup = try Setup(backend: backend)
        #expect(try setup.sync(.initialise).mismatched == [])
        #expect(try count(setup.device, "customers") == 55)
        try setup.storage.setRepScope(rep: "R07", territory: "PL-MAZ", channel: nil)
        let result = try setup.sync(.full, upload: false)
        #expect(result.mismatched == [])
        // The 20 customers of this week's routes (BG-SOF) and the 5 of PL-MAZ.
        #expect(try count(setup.device, "customers") == 25)
        #expect(try count(setup.device, "customers WHERE territory_id = 'PL-MAZ'") == 5)
        #expect(try count(setup.device, "customers WHERE territory_id = 'BG-SOF' AND id NOT IN (SELECT customer_id FROM route_stops)") == 0)
        #expect(try count(setup.device, "history_orders WHERE customer_id NOT IN (SELECT id FROM customers)") == 0)
        #expect(try setup.device.database.text("SELECT territory_id FROM reps WHERE id = 'R07'") == "PL-MAZ")
        try expectSameAsReload(setup)
    }

    @Test("a handheld restored from a copy two downloads old: the next full sync brings it to the hub's present, no change lost, no deleted row kept", arguments: Backend.allCases)
    func restoredWithAnOldCursor(backend: Backend) throws {
        let setup = try Setup(backend: backend)
        #expect(try setup.sync(.initialise).mismatched == [])
        // The copy on the card: the working set and the download state of the first sync.
        let restoredHome = setup.directory.path + "/restored"
        try FileManager.default.createDirectory(atPath: restoredHome, withIntermediateDirectories: true)
        try setup.device.database.execute("VACUUM INTO ?", [.text(restoredHome + "/" + DeviceDatabase.fileName)])
        // Two more downloads the copy never saw: a price, then a deleted product.
        try setup.erp.database.execute("UPDATE prices SET price_minor = 777 WHERE part_number = 'PN-10003' AND level = 'customer'")
        try setup.storage.importMasterData(from: setup.erp.path)
        #expect(try setup.sync(.full, upload: false).downloaded == 1)
        for table in ["stock", "prices", "product_units", "products"] { try setup.erp.database.execute("DELETE FROM \(table) WHERE part_number = 'PN-10141'") }
        try setup.storage.importMasterData(from: setup.erp.path)
        #expect(try setup.sync(.full, upload: false).downloaded > 0)
        // The handheld is restored: it names the first download as its last.
        setup.device = try DeviceDatabase.open(home: restoredHome, clock: ManualClock(DownloadTests.now))
        #expect(try setup.device.database.int64("SELECT price_minor FROM prices WHERE part_number = 'PN-10003' AND level = 'customer'") != 777)
        #expect(try count(setup.device, "products WHERE part_number = 'PN-10141'") == 1)
        let restored = try setup.sync(.full, upload: false)
        #expect(restored.mismatched == [])
        #expect(try setup.device.database.int64("SELECT price_minor FROM prices WHERE part_number = 'PN-10003' AND level = 'customer'") == 777)
        for table in ["products", "product_units", "prices", "stock"] { #expect(try count(setup.device, "\(table) WHERE part_number = 'PN-10141'") == 0) }
        try expectSameAsReload(setup)
    }
}
