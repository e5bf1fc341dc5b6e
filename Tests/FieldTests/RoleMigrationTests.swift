import Field
import SatchelTesting
import Store
import Testing

@Suite("Device migration 4: van sellers")
struct RoleMigrationTests {
    @Test("a database from schema 3 keeps its reps and their roles through migration 4, which accepts van_seller and still refuses an unknown role")
    func schemaThreeUpgrades() throws {
        let directory = TemporaryDirectory("role-migration")
        let path = directory.path + "/" + DeviceDatabase.fileName
        do {
            let old = try Database(path: path)
            try old.migrate(Array(FieldSchema.migrations.prefix(3)), applicationID: FieldSchema.applicationID)
            try old.execute("INSERT INTO device(id, rep_id, created_at) VALUES ('BG1', 'R01', 0)")
            try old.execute("INSERT INTO reps(id, name, role) VALUES ('R01', 'Цветелина Иванова', 'merchandiser'), ('R02', 'Łukasz Żak', 'supervisor')")
            #expect(throws: (any Error).self) { try old.execute("INSERT INTO reps(id, name, role) VALUES ('R03', 'Ян', 'van_seller')") }
        }
        let device = try DeviceDatabase.open(home: directory.path)
        #expect(try device.database.int64("PRAGMA user_version") == Int64(FieldSchema.migrations.count))
        #expect(try device.database.query("SELECT id || ':' || role FROM reps ORDER BY id") { $0.text(0) } == ["R01:merchandiser", "R02:supervisor"])
        try device.database.execute("INSERT INTO reps(id, name, role) VALUES ('R03', 'Ян Смирнов', 'van_seller')")
        #expect(throws: (any Error).self) { try device.database.execute("INSERT INTO reps(id, name, role) VALUES ('R04', 'X', 'manager')") }
    }
}
