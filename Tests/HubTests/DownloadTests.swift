import Agent
import Foundation
import Dispatch
import Field
import Hub
import SatchelTesting
import Seal
import Store
import Sync
import Testing
import Transport

/// Downloads end to end in one process: the hub (SQLite, or PostgreSQL where a test takes a
/// `Backend`) with master data imported the way an ERP extract arrives, a real device database,
/// the real channel over a socket pair.
@Suite("Downloads: init, full, resume, checksums", .serialized)
struct DownloadTests {
    static let cost = PasswordHash.Cost(opsLimit: 1, memLimit: 64 * 1024)  // tests only
    /// 2026-11-23 10:00 UTC: the hub's "today" for route scope.
    static let now: Int64 = 1_795_428_000_000

    final class Setup: @unchecked Sendable {
        let directory = TemporaryDirectory("download")
        let store: TestStore
        var storage: any HubStorage { store.storage }
        let server: SyncServer
        let deviceKey = X25519.KeyPair.generate()
        /// A var: a test restores the handheld from an older copy of its database (DownloadCursorTests).
        var device: DeviceDatabase
        let erp: DeviceDatabase
        var hubPath: String { directory.path + "/hub.db" }

        init(customers: Int = 60, products: Int = 150, backend: Backend = .sqlite) throws {
            let hubPath = directory.path + "/hub.db"
            if backend == .sqlite {
                store = TestStore(storage: try SQLiteHubStorage(path: hubPath), open: { try SQLiteHubStorage(path: hubPath) }, keep: directory, url: hubPath)
            } else {
                store = try backend.makeHub()
            }
            let open = store.open
            server = SyncServer(clock: { DownloadTests.now }, makeStorage: open)
            try store.storage.addRep(id: "R07", name: "Йордан Стоянов", passwordHash: PasswordHash.hash(password: "sync-hasło", cost: DownloadTests.cost))
            try store.storage.addDevice(id: "BG03", rep: "R07", publicKey: deviceKey.publicKey, now: 0)
            // The ERP extract: a database in the working-set shape, imported whole.
            erp = try DeviceDatabase.create(home: directory.path + "/erp", deviceID: "ERP", repID: "R07", clock: ManualClock(DownloadTests.now))
            try WorkingSet(erp).apply { writer in
                try writer.territory(id: "BG", name: "България")
                try writer.territory(id: "BG-SOF", name: "София", parentID: "BG")
                try writer.territory(id: "PL-MAZ", name: "Mazowieckie")
                try writer.rep(id: "R07", name: "Йордан Стоянов", territoryID: "BG-SOF")
                for index in 0..<products {
                    let part = "PN-\(10_000 + index)"
                    try writer.product(.init(partNumber: part, name: index % 2 == 0 ? "Кафе Арабика \(index)" : "Kawa ziarnista łagodna \(index)",
                                             units: [(unit: "box", factor: 12)]))
                    for (level, factor) in [(PriceLevel.customer, 100), (.dealer, 85), (.promo, 75)] {
                        try writer.price(.init(partNumber: part, level: level, currency: "BGN", priceMinor: Int64(1_000 + index * factor)))
                    }
                    try writer.stock(location: "warehouse", partNumber: part, quantity: Int64(index * 7 % 500))
                    try writer.stock(location: "van:BG03", partNumber: part, quantity: Int64(index % 40))
                    try writer.stock(location: "van:OTHER", partNumber: part, quantity: 1)
                }
                for index in 0..<customers {
                    let id = "CBG\(100_000 + index)"
                    try writer.customer(.init(id: id, name: index % 3 == 0 ? "Магазин „Зора“ №\(index)" : index % 3 == 1 ? "Sklep Żabka \(index)" : "Гастроном Ёлка \(index)",
                                              address: "ул. Витоша \(index), София", territoryID: index < customers - 5 ? "BG-SOF" : "PL-MAZ",
                                              currency: "BGN", creditLimitMinor: 500_000, overdueMinor: index % 7 == 0 ? 12_000 : 0,
                                              discipline: index % 7 == 0 ? .hesitant : .strict, levels: [.customer, .dealer],
                                              talkingPoints: ["Пита за промоции", "Dostawa we wtorki"]))
                    try writer.history(.init(ref: "ERP-\(index)", customerID: id, day: "2026-11-0\(1 + index % 9)", currency: "BGN", paidLate: false,
                                             lines: [(partNumber: "PN-\(10_000 + index % products)", quantity: 3, amountMinor: 3_300)]))
                }
                try writer.route(id: "RT-2026-11-23", repID: "R07", day: "2026-11-23", customerIDs: (0..<10).map { "CBG\(100_000 + $0)" })
                try writer.route(id: "RT-2026-11-24", repID: "R07", day: "2026-11-24", customerIDs: (10..<20).map { "CBG\(100_000 + $0)" })
                try writer.route(id: "RT-2026-10-01", repID: "R07", day: "2026-10-01", customerIDs: ["CBG100059"])  // the past: out of scope
            }
            try store.storage.importMasterData(from: erp.path)
            device = try DeviceDatabase.create(home: directory.path + "/device", deviceID: "BG03", repID: "R07", clock: ManualClock(DownloadTests.now))
        }

        /// One session from the device; `budget` bytes of link before it drops (nil: never).
        func sync(_ mode: SyncMode, budget: Int? = nil, upload: Bool = true, budgets: [String: Int] = DeviceDownload.defaultBudgets) throws -> SyncResult {
            try server.inProcessSession { deviceEnd in
                let stream: any ByteStream = budget.map { DroppedLinkTests.DroppingStream(deviceEnd, budget: $0) } ?? deviceEnd
                defer { stream.close() }
                return try sync(mode, over: stream, upload: upload, budgets: budgets)
            }
        }

        /// The device's side of one session over `stream` (the hub must be serving its other end):
        /// pending changes up as DeviceSync sends them, the download into the device.
        func sync(_ mode: SyncMode, over stream: any ByteStream, upload: Bool = true,
                  budgets: [String: Int] = DeviceDownload.defaultBudgets) throws -> SyncResult {
            let download = DeviceDownload(device, budgets: budgets)
            let uploaded = try device.uploadedThroughSeq()
            let pending = try device.changes(after: uploaded)
            let batches = upload ? Batch.chunks(pending, idPrefix: "BG03") : []
            let result = try SyncClient.run(stream, deviceKey: deviceKey, hubKey: try storage.hubKey().publicKey, device: "BG03", password: "sync-hasło",
                                            mode: mode, batches: batches, pull: mode == .fast ? nil : try download.pullRequest(reset: mode == .initialise),
                                            sink: download, deadline: .after(seconds: 20))
            if let receipt = result.receipt {
                try device.database.execute("UPDATE sync_state SET value = ? WHERE key = 'uploaded_through_seq'", [.text(String(receipt.throughSeq))])
            }
            return result
        }

        func hub(_ sql: String, _ values: [DatabaseValue] = []) throws {
            guard values.isEmpty || store.storage is SQLiteHubStorage else { throw HubError.invalid("SQL values on the SQLite backend only") }
            if values.isEmpty { try store.execute(sql) } else { try Database(path: hubPath).execute(sql, values) }
        }
    }

    func count(_ device: DeviceDatabase, _ table: String) throws -> Int64 {
        try device.database.int64("SELECT count(*) FROM \(table)")
    }

    @Test("init loads exactly the scope: today's and tomorrow's routes, the territory, stock of this van, history of 90 days", arguments: Backend.allCases)
    func initLoadsScope(backend: Backend) throws {
        let setup = try Setup(backend: backend)
        let result = try setup.sync(.initialise)
        #expect(result.mismatched == [])
        #expect(result.downloaded > 0)
        let device = setup.device
        #expect(try count(device, "customers") == 55)            // 5 customers of another territory stay out
        #expect(try count(device, "routes") == 2)                // the October route is history
        #expect(try count(device, "route_stops") == 20)
        #expect(try count(device, "products") == 150)
        #expect(try count(device, "prices") == 450)
        #expect(try count(device, "stock") == 300)               // warehouse + this van, not van:OTHER
        #expect(try count(device, "stock WHERE location = 'van:OTHER'") == 0)
        // Cyrillic and Polish text arrives byte for byte, and search folds it.
        let name = try device.database.text("SELECT name FROM customers WHERE id = 'CBG100000'")
        #expect(name == "Магазин „Зора“ №0")
        #expect(try Customers(device).find("zabka").count > 0)
        // A second full sync with nothing changed at the office sends no rows at all.
        let again = try setup.sync(.full)
        #expect(again.downloaded == 0)
        #expect(again.mismatched == [])
    }

    @Test("a device that keeps at most 25 customers gets the 25 most needed: every stop of its routes first; the rest leave when the budget shrinks", arguments: Backend.allCases)
    func budgetKeepsTheMostNeeded(backend: Backend) throws {
        let setup = try Setup(backend: backend)
        let result = try setup.sync(.initialise, budgets: ["customers": 25, "products": 6_000])
        #expect(result.mismatched == [])
        #expect(try count(setup.device, "customers") == 25)
        #expect(try count(setup.device, "route_stops WHERE customer_id NOT IN (SELECT id FROM customers)") == 0)
        #expect(try count(setup.device, "customers WHERE id IN (SELECT customer_id FROM route_stops)") == 20)
        // Fewer than the stops of the routes: the stops of customers left out go too.
        let shrunk = try setup.sync(.full, budgets: ["customers": 15, "products": 6_000])
        #expect(shrunk.mismatched == [])
        #expect(try count(setup.device, "customers") == 15)
        #expect(try count(setup.device, "route_stops") == 15)
    }

    @Test("a rep moved to the trade channel keeps only trade products and the parts its customers' history names; the rest is purged", arguments: Backend.allCases)
    func channelScope(backend: Backend) throws {
        let setup = try Setup(backend: backend)
        _ = try setup.sync(.initialise)
        try setup.hub("UPDATE products SET channel = 'trade' WHERE part_number < 'PN-10020'")
        try setup.storage.setRepScope(rep: "R07", territory: nil, channel: "trade")
        let result = try setup.sync(.full)
        #expect(result.mismatched == [])
        let outside = try count(setup.device, "products WHERE channel <> 'trade' AND part_number NOT IN (SELECT part_number FROM history_lines)")
        #expect(outside == 0)
        #expect(try count(setup.device, "products WHERE channel = 'trade'") == 20)
        #expect(try count(setup.device, "stock WHERE part_number NOT IN (SELECT part_number FROM products)") == 0)
    }

    @Test("a supervisor over Bulgaria gets the routes of the reps below and the customers of every territory under BG", arguments: Backend.allCases)
    func supervisorSeesTheArea(backend: Backend) throws {
        let setup = try Setup(backend: backend)
        try setup.storage.addRep(id: "R08", name: "Мария Петрова", passwordHash: PasswordHash.hash(password: "другая-парола", cost: DownloadTests.cost))
        try setup.hub("UPDATE reps SET territory_id = 'BG-SOF' WHERE id = 'R08'")
        try setup.hub("INSERT INTO routes(id, rep_id, day) VALUES ('RT-R08', 'R08', '2026-11-25')")
        try setup.hub("INSERT INTO route_stops(route_id, position, customer_id) VALUES ('RT-R08', 1, 'CBG100058')")  // a PL-MAZ customer
        _ = try setup.sync(.initialise)
        #expect(try count(setup.device, "routes") == 2)                       // a rep: only its own
        try setup.storage.setRepScope(rep: "R07", territory: "BG", channel: nil, role: "supervisor")
        let result = try setup.sync(.full)
        #expect(result.mismatched == [])
        #expect(try count(setup.device, "routes") == 3)
        #expect(try count(setup.device, "customers") == 56)                   // BG-SOF's 55, and R08's stop in PL-MAZ
        #expect(try count(setup.device, "reps") == 2)
        #expect(throws: HubError.self) { try setup.storage.setRepScope(rep: "R07", territory: nil, channel: nil, role: "boss") }
    }

    @Test("full sends only what changed: three prices, one stock figure, a new route, the purge of an old one", arguments: Backend.allCases)
    func fullSendsChanges(backend: Backend) throws {
        let setup = try Setup(backend: backend)
        _ = try setup.sync(.initialise)
        try setup.hub("UPDATE prices SET price_minor = price_minor + 10 WHERE part_number IN ('PN-10001', 'PN-10002', 'PN-10003') AND level = 'customer'")
        try setup.hub("UPDATE stock SET quantity = 99 WHERE location = 'van:BG03' AND part_number = 'PN-10004'")
        try setup.hub("UPDATE stock SET quantity = 1234 WHERE location = 'van:OTHER' AND part_number = 'PN-10004'")  // not this device's van
        try setup.hub("DELETE FROM route_stops WHERE route_id = 'RT-2026-11-24'")
        try setup.hub("DELETE FROM routes WHERE id = 'RT-2026-11-24'")
        let result = try setup.sync(.full)
        // 3 prices + 1 stock upserts; 1 route + 10 stops purged; the 10 customers of that route
        // are still in the territory, so they stay.
        #expect(result.downloaded == 3 + 1 + 1 + 10)
        #expect(result.mismatched == [])
        #expect(try setup.device.database.int64("SELECT price_minor FROM prices WHERE part_number = 'PN-10002' AND level = 'customer'") == 1_000 + 2 * 100 + 10)
        #expect(try setup.device.database.int64("SELECT quantity FROM stock WHERE location = 'van:BG03' AND part_number = 'PN-10004'") == 99)
        #expect(try count(setup.device, "routes") == 1)
    }

    @Test("a download dropped at random bytes resumes after the last whole frame: no row applied twice, same end state", arguments: [1, 2, 3])
    func resumeAfterDrops(seed: UInt64) throws {
        try resumeAfterDrops(seed: seed, backend: .sqlite)
    }

    @Test("on PostgreSQL too: a dropped download resumes after the last whole frame, same end state")
    func resumeAfterDropsOnPostgres() throws {
        try resumeAfterDrops(seed: 4, backend: .postgres)
    }

    func resumeAfterDrops(seed: UInt64, backend: Backend) throws {
        let reference = try Setup(customers: 400, products: 1_500, backend: backend)
        let undisturbed = try reference.sync(.initialise)
        let linkBytes = UInt64(undisturbed.bytesSent + undisturbed.bytesReceived)
        let setup = try Setup(customers: 400, products: 1_500, backend: backend)
        var random = DroppedLinkTests.SplitMix(seed: seed)
        var applied = 0, attempts = 0, drops = 0
        while attempts < 300 {
            attempts += 1
            let before = try DeviceDownload(setup.device).state()
            // Until a download has begun on the device, a retry is still an init; after that it
            // is a plain full sync that resumes the plan.
            let mode: SyncMode = before.pull.isEmpty ? .initialise : .full
            var succeeded = false
            do {
                let result = try setup.sync(mode, budget: drops >= 6 && random.next() % 3 == 0 ? nil : Int(random.next() % (linkBytes / 3)) + 50)
                #expect(result.mismatched == [])
                succeeded = true
            } catch SyncChannel.Failure.stream(.closed) {
                drops += 1  // the link went away: retry; any other error is a failure of the test
            }
            let after = try DeviceDownload(setup.device).state()
            applied += after.pull == before.pull ? after.applied - before.applied : after.applied
            if succeeded { break }
        }
        #expect(drops >= 3)  // each attempt carries at most a third of the download
        #expect(applied == undisturbed.downloaded)
        #expect(try DeviceDownload(setup.device).checksums() == DeviceDownload(reference.device).checksums())
    }

    @Test("a row the device lost is found by the checksum; the next sync starts the working set over and it matches again", arguments: Backend.allCases)
    func checksumMismatchResets(backend: Backend) throws {
        let setup = try Setup(backend: backend)
        _ = try setup.sync(.initialise)
        try setup.device.database.execute("DELETE FROM stock WHERE part_number = 'PN-10005'")
        try setup.hub("UPDATE prices SET price_minor = 1 WHERE part_number = 'PN-10006' AND level = 'promo'")  // something to download
        let found = try setup.sync(.full)
        #expect(found.mismatched == ["stock"])
        #expect(try DeviceDownload(setup.device).state().resetRequested)
        let repaired = try setup.sync(.full)
        #expect(repaired.mismatched == [])
        #expect(try count(setup.device, "stock") == 300)
    }

    @Test("a display request reserving a material the van or warehouse holds no stock row for: the next full sync checks out, no reload, the reservation stays", arguments: Backend.allCases)
    func reservationWithoutStockRow(backend: Backend) throws {
        let setup = try Setup(backend: backend)
        try WorkingSet(setup.erp).apply { writer in
            try writer.displayType(.init(code: "WALL", name: "Ścianka „Витоша“", materials: [(partNumber: "PN-10009", fixedQuantity: 2, perSquareMetreMilli: 0)]))
        }
        try setup.erp.database.execute("DELETE FROM stock WHERE part_number = 'PN-10009' AND location = 'warehouse'")
        try setup.storage.importMasterData(from: setup.erp.path)
        #expect(try setup.sync(.initialise).mismatched == [])
        let request = try Capture(setup.device).requestDisplay(customerID: "CBG100001", typeCode: "WALL", widthCm: 100, heightCm: 100, note: "Przy kasie, обект 2")
        #expect(request.document.materials == [MaterialReservation(partNumber: "PN-10009", location: "warehouse", quantity: 2, shortQuantity: 2)])
        try setup.hub("UPDATE prices SET price_minor = 1 WHERE part_number = 'PN-10006' AND level = 'promo'")  // something to download
        let result = try setup.sync(.full)
        #expect(result.mismatched == [])
        #expect(try !DeviceDownload(setup.device).state().resetRequested)
        // No stock row of the device's own: the reservation waits in display_reservations.
        #expect(try count(setup.device, "stock WHERE location = 'warehouse' AND part_number = 'PN-10009'") == 0)
        #expect(try count(setup.device, "display_reservations WHERE part_number = 'PN-10009'") == 1)
        // The warehouse gets the part: the hub's row arrives, the reservation still counts against it.
        try setup.hub("INSERT INTO stock(location, part_number, quantity) VALUES ('warehouse', 'PN-10009', 5)")
        #expect(try setup.sync(.full).mismatched == [])
        #expect(try setup.device.database.int64("SELECT quantity - reserved FROM stock WHERE location = 'warehouse' AND part_number = 'PN-10009'") == 3)
        #expect(try setup.sync(.full).mismatched == [])
    }

    @Test("a reset loads every stock row again: the open reservations still count against them")
    func resetKeepsReservations() throws {
        let setup = try Setup()
        try WorkingSet(setup.erp).apply { writer in
            try writer.displayType(.init(code: "WALL", name: "Стенд „Берёзка“", materials: [(partNumber: "PN-10009", fixedQuantity: 2, perSquareMetreMilli: 0)]))
        }
        try setup.storage.importMasterData(from: setup.erp.path)
        _ = try setup.sync(.initialise)
        let available = "SELECT quantity - reserved FROM stock WHERE location = 'warehouse' AND part_number = 'PN-10009'"
        let before = try setup.device.database.int64(available)
        _ = try Capture(setup.device).requestDisplay(customerID: "CBG100002", typeCode: "WALL", widthCm: 80, heightCm: 120, note: "Witryna, стенд")
        #expect(try setup.device.database.int64(available) == before - 2)
        try setup.device.database.execute("DELETE FROM stock WHERE part_number = 'PN-10005'")  // drift: the check finds it
        #expect(try setup.sync(.full).mismatched == ["stock"])
        #expect(try setup.sync(.full).mismatched == [])  // the reset
        #expect(try setup.device.database.int64(available) == before - 2)
    }

    @Test("a customer an unsent order points at leaves the scope: the row stays on the device, out of the checksums", arguments: Backend.allCases)
    func referencedRowIsRetained(backend: Backend) throws {
        let setup = try Setup(backend: backend)
        _ = try setup.sync(.initialise)
        let order = try Capture(setup.device).createOrder(customerID: "CBG100030", lines: [OrderLineRequest(partNumber: "PN-10001", quantity: 2)], confirm: true)
        try setup.hub("UPDATE customers SET territory_id = 'PL-MAZ' WHERE id = 'CBG100030'")
        let result = try setup.sync(.full, upload: false)
        #expect(result.mismatched == [])
        #expect(try count(setup.device, "customers WHERE id = 'CBG100030'") == 1)
        #expect(try count(setup.device, "working_set_retained") == 1)
        #expect(try count(setup.device, "orders WHERE id = '\(order.document.id)'") == 1)
        // Back in scope: the row is the hub's again.
        try setup.hub("UPDATE customers SET territory_id = 'BG-SOF' WHERE id = 'CBG100030'")
        #expect(try setup.sync(.full, upload: false).mismatched == [])
        #expect(try count(setup.device, "working_set_retained") == 0)
    }

    @Test("the office rejects an order the rep then asks the invoice for: the office wins, the rep's value is kept as a sync error on both ends", arguments: Backend.allCases)
    func officeWinsConflict(backend: Backend) throws {
        let setup = try Setup(backend: backend)
        _ = try setup.sync(.initialise)
        let capture = Capture(setup.device)
        let order = try capture.createOrder(customerID: "CBG100001", lines: [OrderLineRequest(partNumber: "PN-10003", quantity: 4)], confirm: true).document.id
        _ = try setup.sync(.full)                                   // the order goes up
        try setup.storage.setDocumentState(device: "BG03", entity: "order", entityId: order, state: "accepted", approval: nil, now: DownloadTests.now)
        _ = try setup.sync(.full)                                   // "accepted" comes down
        #expect(try setup.device.database.text("SELECT state FROM orders WHERE id = ?", [.text(order)]) == "accepted")
        // Offline, the rep asks for the invoice; meanwhile the office rejects the order.
        _ = try capture.advanceOrder(order, to: .invoiceRequested)
        try setup.storage.setDocumentState(device: "BG03", entity: "order", entityId: order, state: "rejected", approval: nil, now: DownloadTests.now + 1)
        let result = try setup.sync(.full)
        #expect(result.receipt?.stored == 1)                        // the rep's change is on the hub, not dropped
        #expect(result.mismatched == [])
        #expect(try setup.device.database.text("SELECT state FROM orders WHERE id = ?", [.text(order)]) == "rejected")
        let errors = try SyncErrorEntry.all(setup.device)
        #expect(errors.count == 1)
        #expect(errors.first?.deviceValue == "invoice_requested")
        #expect(errors.first?.hubValue == "rejected")
        #expect(try setup.storage.syncErrors(device: "BG03").map(\.deviceValue) == ["invoice_requested"])
        #expect(try DeviceStatus.read(setup.device).syncErrors == 1)
        // A move the lifecycle allows from the office's state is simply taken.
        try setup.storage.setDocumentState(device: "BG03", entity: "order", entityId: order, state: "accepted", approval: nil, now: DownloadTests.now + 2)
        _ = try setup.sync(.full)
        _ = try capture.advanceOrder(order, to: .invoiceRequested)
        _ = try setup.sync(.full)
        #expect(try setup.storage.syncErrors(device: "BG03").count == 1)
        #expect(try setup.device.database.text("SELECT state FROM orders WHERE id = ?", [.text(order)]) == "invoice_requested")
    }

    @Test("the office accepts an order before the device has uploaded it: the same sync takes it up and brings accepted down, no sync error", arguments: Backend.allCases)
    func officeAnswersBeforeTheUpload(backend: Backend) throws {
        let setup = try Setup(backend: backend)
        _ = try setup.sync(.initialise)
        let capture = Capture(setup.device)
        let confirmed = try capture.createOrder(customerID: "CBG100001", lines: [OrderLineRequest(partNumber: "PN-10003", quantity: 4)], confirm: true).document.id
        // A draft edited twice, confirmed, and accepted by the office before any of it arrived.
        let draft = try capture.createOrder(customerID: "CBG100001", lines: [OrderLineRequest(partNumber: "PN-10004", quantity: 2)], confirm: false).document.id
        _ = try capture.addLines(orderID: draft, lines: [OrderLineRequest(partNumber: "PN-10005", quantity: 1)])
        _ = try capture.confirmOrder(draft)
        for order in [confirmed, draft] {
            try setup.storage.setDocumentState(device: "BG03", entity: "order", entityId: order, state: "accepted", approval: nil, now: DownloadTests.now)
        }
        let result = try setup.sync(.full)
        #expect(result.receipt?.stored == 4)
        #expect(result.mismatched == [])
        #expect(try setup.storage.syncErrors(device: "BG03").isEmpty)
        #expect(try SyncErrorEntry.all(setup.device).isEmpty)
        #expect(try DeviceStatus.read(setup.device).syncErrors == 0)
        for order in [confirmed, draft] {
            #expect(try setup.device.database.text("SELECT state FROM orders WHERE id = ?", [.text(order)]) == "accepted")
        }
    }

    @Test("a reload on a handheld holding documents keeps what they point at, and what that points at (a customer's territory)")
    func reloadWithDocuments() throws {
        let setup = try Setup()
        _ = try setup.sync(.initialise)
        _ = try Capture(setup.device).createOrder(customerID: "CBG100002", lines: [OrderLineRequest(partNumber: "PN-10002", quantity: 1)], confirm: true)
        let again = try setup.sync(.initialise, upload: false)
        #expect(again.mismatched == [])
        #expect(try count(setup.device, "customers") == 55)
        // The same after a checksum mismatch, with the customer now out of scope.
        try setup.hub("UPDATE customers SET territory_id = 'PL-MAZ' WHERE id = 'CBG100002'")
        try setup.hub("DELETE FROM route_stops WHERE customer_id = 'CBG100002'")
        try setup.device.database.execute("UPDATE stock SET quantity = quantity + 1 WHERE part_number = 'PN-10001'")
        #expect(try setup.sync(.full, upload: false).mismatched.contains("stock"))
        let reset = try setup.sync(.full, upload: false)
        #expect(reset.mismatched == [])
        #expect(try count(setup.device, "customers WHERE id = 'CBG100002'") == 1)          // the order points at it
        #expect(try count(setup.device, "working_set_retained") >= 1)
    }

    @Test("eight handhelds initialising and uploading at once against one hub file: every session succeeds, nothing lost")
    func concurrentSessions() throws {
        let setup = try Setup(customers: 60, products: 400)
        let count = 8
        let keys = (0..<count).map { _ in X25519.KeyPair.generate() }
        for index in 0..<count {
            try setup.storage.addDevice(id: "C\(index)", rep: "R07", publicKey: keys[index].publicKey, now: 0)
        }
        final class Outcome: @unchecked Sendable { var errors: [String] = []; var mismatched = 0; let lock = NSLock() }
        let outcome = Outcome()
        let hubKey = try setup.storage.hubKey().publicKey
        let root = setup.directory.path
        DispatchQueue.concurrentPerform(iterations: count) { index in
            do {
                let device = try DeviceDatabase.create(home: root + "/c\(index)", deviceID: "C\(index)", repID: "R07", clock: ManualClock(DownloadTests.now))
                // A handheld restored from an old card: a few customers and the visits made to them.
                try WorkingSet(device).apply { writer in
                    for visit in 0..<20 { try writer.customer(.init(id: "CBG\(100_000 + visit)", name: "Стар запис \(visit)", currency: "BGN")) }
                }
                for visit in 0..<20 {
                    _ = try Capture(device).recordVisit(customerID: "CBG\(100_000 + visit)", outcome: .noOrder, note: "одновременно \(visit)")
                }
                let changes = try device.changes(after: 0)
                let download = DeviceDownload(device)
                let result = try setup.server.inProcessSession { deviceEnd in try SyncClient.run(deviceEnd, deviceKey: keys[index], hubKey: hubKey, device: "C\(index)", password: "sync-hasło",
                                                mode: .initialise, batches: Batch.chunks(changes, idPrefix: "C\(index)"),
                                                pull: try download.pullRequest(reset: true), sink: download, deadline: .after(seconds: 60)) }
                outcome.lock.lock()
                outcome.mismatched += result.mismatched.count
                if result.receipt?.stored != 20 { outcome.errors.append("C\(index): receipt \(String(describing: result.receipt))") }
                outcome.lock.unlock()
            } catch {
                outcome.lock.lock(); outcome.errors.append("C\(index): \(error)"); outcome.lock.unlock()
            }
        }
        #expect(outcome.errors == [])
        #expect(outcome.mismatched == 0)
        #expect(try setup.storage.changeCount(device: nil) == Int64(count * 20))
        #expect(try setup.storage.auditLog(limit: 50).filter { $0.result == "ok" }.count == count)
    }

    @Test("an extract that is not SQLite, or lacks a table, is refused by name before anything is replaced")
    func badExtract() throws {
        let setup = try Setup()
        let before = try setup.storage.changeCount(device: nil)
        let customers = { try Database(path: setup.hubPath).int64("SELECT count(*) FROM customers") }
        let count = try customers()
        let junk = setup.directory.path + "/junk.db", half = setup.directory.path + "/half.db"
        try Array("not a database, Заказ".utf8).withUnsafeBytes { _ = FileManager.default.createFile(atPath: junk, contents: Data($0)) }
        try Database(path: half).execute("CREATE TABLE territories(id TEXT, name TEXT, parent_id TEXT)")
        #expect(throws: HubError.self) { try setup.storage.importMasterData(from: junk) }
        do {
            try setup.storage.importMasterData(from: half)
            Issue.record("a half extract was imported")
        } catch HubError.invalid(let why) {
            #expect(why.contains("half.db") && why.contains("products") && why.contains("nothing imported"))
        }
        #expect(try customers() == count)
        #expect(try setup.storage.changeCount(device: nil) == before)
        #expect(throws: HubError.notFound("device NOPE")) { try setup.storage.syncErrors(device: "NOPE") }
    }

    @Test("the TABLE example of docs/protocol.md §6 is what the encoder writes")
    func protocolExample() throws {
        let frame = TableFrame(table: WorkingSetTables.named("stock")!, phase: .upsert, firstPosition: 0,
                               rows: [[.text("van:WAW07"), .text("PN-10001"), .integer(37)]])
        let body = try frame.encode(catalogue: Catalogue(parts: ["PN-10000", "PN-10001"]))
        #expect(Array(body.prefix(5)) == [0x08, 0x01, 0x00, 0x01, 0x03])
        // Protocol 5: no held flags (0: the device holds none of the rows); then protocol 4's
        // columns: location as a text column (numbered: prefix `van:WAW`, 2 digits, 7), part
        // position step +2 (zig-zag 4, + 1), quantity with divisor 37 and value 1.
        #expect(Array(body.dropFirst(13)) == [0x00, 0x01, 0x00, 0x07] + Array("van:WAW".utf8) + [0x02, 0x00, 0x0E, 0x05, 0x25, 0x00, 0x02])
    }

    @Test("a hostile TABLE body is refused: unknown table, bad checksum, position past the catalogue, truncation at every byte")
    func hostileFrames() throws {
        let products = WorkingSetTables.products
        let stock = WorkingSetTables.named("stock")!
        let catalogue = Catalogue(parts: ["PN-1", "PN-2"])
        let frame = TableFrame(table: stock, phase: .upsert, firstPosition: 0,
                               rows: [[.text("van:BG03"), .text("PN-1"), .integer(5)], [.text("van:BG03"), .text("PN-9"), .integer(-3)]])
        let body = try frame.encode(catalogue: catalogue)
        #expect(try TableFrame.decode(body, catalogue: catalogue) == frame)
        for length in 0..<body.count {
            // The wire reader's refusal, not just any error: a crash-worthy internal error must not pass.
            #expect(throws: WireReader.Failure.self) { try TableFrame.decode(Array(body.prefix(length)), catalogue: catalogue) }
        }
        var corrupt = body
        corrupt[corrupt.count - 1] ^= 1
        #expect(throws: TableFrame.Failure.checksum(table: "stock", firstPosition: 0)) { try TableFrame.decode(corrupt, catalogue: catalogue) }
        #expect(throws: TableFrame.Failure.positionOutOfCatalogue(table: "stock", position: 0)) {
            try TableFrame.decode(body, catalogue: Catalogue(parts: [String]()))
        }
        var otherSchema = body
        otherSchema[4] = 4  // header: table, phase, position, rows, columns
        #expect(throws: TableFrame.Failure.columns(table: "stock", sent: 4, known: 3)) { try TableFrame.decode(otherSchema, catalogue: catalogue) }
        var unknown = body
        unknown[0] = 99
        #expect(throws: TableFrame.Failure.unknownTable(99)) { try TableFrame.decode(unknown, catalogue: catalogue) }
        // A value of the wrong type in hub data stops the frame on the hub side, by name.
        let wrong = TableFrame(table: products, phase: .upsert, firstPosition: 0, rows: [[.text("PN-1"), .integer(5), .text("pcs"), .text("retail")]])
        #expect(throws: TableFrame.Failure.wrongType(table: "products", column: "name")) { try wrong.encode(catalogue: nil) }
    }
}
