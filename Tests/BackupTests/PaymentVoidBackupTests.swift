import Agent
import Backup
import Field
import SatchelTesting
import Store
import Testing

@Suite("Backup: a payment void travels on the card like every document")
struct PaymentVoidBackupTests {
    @Test("a wiped handheld restores the payment and its void; the customer's net stays what it was")
    func voidRestored() throws {
        let fixture = try BackupFixture()
        let device = try fixture.open()
        #expect(try fixture.agent.initCard(device, passphrase: BackupFixture.passphrase).state == .ok)
        let payment = try Capture(device).recordPayment(customerID: "C2", amountMinor: 480_00, method: .cash, receipt: "KP/Ź/1").document
        fixture.agent.mirror(device)
        let void = try Capture(device).voidPayment(payment.id, reason: "Pomyłka: zapłata była przelewem").document
        #expect(fixture.agent.mirror(device).behind == 0)
        let net = try Customers(device).card("C2").collectedSinceBalanceMinor
        #expect(net == 0)
        fixture.wipeInternal()

        _ = try fixture.agent.restore(passphrase: BackupFixture.passphrase)
        let restored = try fixture.open()
        #expect(try restored.database.int64("SELECT count(*) FROM payments WHERE id = ?", [.text(payment.id)]) == 1)
        #expect(try restored.database.text("SELECT reason FROM payment_voids WHERE id = ?", [.text(void.id)]) == "Pomyłka: zapłata była przelewem")
        #expect(try Customers(restored).card("C2").collectedSinceBalanceMinor == net)
        #expect(throws: FieldError.paymentAlreadyVoided(id: payment.id, by: void.id)) { try Capture(restored).voidPayment(payment.id, reason: "again") }
    }
}
