import Agent
@testable import Backup
import Field
import FoundationEssentials
import Journal
import SatchelTesting
import Seal
import Store
import Testing

/// Issue 13: the card format moved from JSON change records (type 1) to the document codec
/// (type 2). A card written by the satchel before that still restores.
@Suite("Backup: a card written before the document codec still restores")
struct LegacyCardTests {
    /// A change record exactly as satchel before the codec sealed it: the entry as JSON (sorted
    /// keys, the document's own JSON text as `payload`), record type 1.
    struct LegacyEntry: Encodable {
        var seq: Int64, changeId: String, at: Int64, entity: String, entityId: String, action: String, payload: String
        enum CodingKeys: String, CodingKey {
            case seq, at, entity, action, payload
            case changeId = "change_id"
            case entityId = "entity_id"
        }
    }

    static func legacyRecord(_ entry: LegacyEntry, device: String, key: BackupKey) throws -> SegmentedJournal.Record {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let plaintext = Array(try encoder.encode(entry))
        var additionalData = Array("satchel change \(device) ".utf8)
        LittleEndian.append(UInt64(entry.seq), to: &additionalData)
        let nonce = AEAD.randomNonce()
        let sealed = try AEAD.seal(plaintext, additionalData: additionalData, nonce: nonce, key: key.journalKey)
        return .init(type: 1, sequence: UInt64(entry.seq), payload: nonce + sealed)
    }

    @Test("a wiped handheld restores an order, a payment and its void from type-1 (JSON) records, then captures in type 2 on the same card")
    func legacyRecordsRestore() throws {
        let fixture = try BackupFixture()
        let device = try fixture.open()
        #expect(try fixture.agent.initCard(device, passphrase: BackupFixture.passphrase).state == .ok)
        let key = BackupKey(SecretBytes(fileBytes(fixture.home + "/card.key")))
        let order = OrderDocument(
            id: "BG03-000001", customerId: "C1", state: .confirmed, approval: .pending, holdReason: "клиентът има просрочие — zaległość",
            priceLevel: "customer", currency: "BGN", totalMinor: 37_02, note: "Доставка до 10:00 — dostawa rano", createdAt: 1_795_428_000_000,
            confirmedAt: 1_795_428_000_000,
            lines: [OrderLine(lineNo: 1, partNumber: "P1", unit: "pcs", quantity: 3, baseQuantity: 3, unitPriceMinor: 12_34, amountMinor: 37_02)])
        let payment = PaymentDocument(id: "BG03-000003", customerId: "C2", amountMinor: 480_00, currency: "PLN", method: .cash,
                                      receipt: "KP/Ź/1", collectedAt: 1_795_428_060_000)
        let void = PaymentVoidDocument(id: "BG03-000005", paymentId: payment.id, customerId: "C2", amountMinor: 480_00, currency: "PLN",
                                       receipt: "KP/Ź/1", reason: "Ошибка: оплата была переводом", at: 1_795_428_120_000)
        let entries = [
            LegacyEntry(seq: 1, changeId: "BG03-000002", at: order.createdAt, entity: "order", entityId: order.id, action: "confirmed",
                        payload: try FieldJSON.payload(order)),
            LegacyEntry(seq: 2, changeId: "BG03-000004", at: payment.collectedAt, entity: "payment", entityId: payment.id, action: "collected",
                        payload: try FieldJSON.payload(payment)),
            LegacyEntry(seq: 3, changeId: "BG03-000006", at: void.at, entity: "payment_void", entityId: void.id, action: "voided",
                        payload: try FieldJSON.payload(void)),
        ]
        let journal = SegmentedJournal(fileSystem: fixture.card, directory: CardLayout(root: "/card", device: "BG03").journalDirectory,
                                       segmentLimitBytes: 256 * 1024)
        _ = try journal.open(repair: true) { _ in }
        try journal.append(try entries.map { try Self.legacyRecord($0, device: "BG03", key: key) })
        fixture.wipeInternal()

        _ = try fixture.agent.restore(passphrase: BackupFixture.passphrase)
        let restored = try fixture.open()
        #expect(try Orders(restored).load(order.id) == order)
        #expect(try restored.database.text("SELECT reason FROM payment_voids WHERE id = ?", [.text(void.id)]) == void.reason)
        #expect(try Customers(restored).card("C2").collectedSinceBalanceMinor == 0)
        let journaled = try restored.changes(after: 0)
        #expect(journaled.map(\.changeId) == ["BG03-000002", "BG03-000004", "BG03-000006"])
        #expect(try journaled.map { try $0.document() } == [.order(order), .payment(payment), .paymentVoid(void)])
        // Ids move on past the legacy entries, and the new capture lands on the same card.
        let visit = try Capture(restored).recordVisit(customerID: "C2", outcome: .order, note: "Rozmowa z właścicielem").document
        #expect(!["BG03-000001", "BG03-000003", "BG03-000005", "BG03-000006"].contains(visit.id))
        #expect(fixture.agent.mirror(restored).behind == 0)
        fixture.wipeInternal()
        _ = try fixture.agent.restore(passphrase: BackupFixture.passphrase)
        #expect(try fixture.open().changes(after: 0).count == 4)
    }
}
