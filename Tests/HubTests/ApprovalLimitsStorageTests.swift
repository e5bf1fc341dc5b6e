import Field
import Hub
import SatchelTesting
import Testing

/// The approval limits through the storage protocol (issue 17), the same assertions on the
/// embedded SQLite hub and on PostgreSQL.
@Suite("approval limits on both hub backends")
struct ApprovalLimitsStorageTests {
    @Test("set, replace and read back; a bad limit is refused by name and changes nothing", arguments: Backend.allCases)
    func setAndRead(backend: Backend) throws {
        let store = try backend.makeHub()
        let storage = store.storage
        #expect(try storage.approvalLimits().isEmpty)
        try storage.setApprovalLimit(ApprovalLimit(role: .supervisor, currency: "BGN", maxDiscountBasisPoints: 1_500, maxTotalMinor: 5_000_00), now: 1)
        try storage.setApprovalLimit(ApprovalLimit(role: .rep, currency: "RUB", maxDiscountBasisPoints: 500, maxTotalMinor: nil), now: 2)
        try storage.setApprovalLimit(ApprovalLimit(role: .supervisor, currency: "BGN", maxDiscountBasisPoints: 2_000, maxTotalMinor: nil), now: 3)
        let expected = [ApprovalLimit(role: .rep, currency: "RUB", maxDiscountBasisPoints: 500, maxTotalMinor: nil),
                        ApprovalLimit(role: .supervisor, currency: "BGN", maxDiscountBasisPoints: 2_000, maxTotalMinor: nil)]
        #expect(try storage.approvalLimits() == expected)
        for bad in [ApprovalLimit(role: .office, currency: "PLN", maxDiscountBasisPoints: 100, maxTotalMinor: nil),
                    ApprovalLimit(role: .rep, currency: "zł", maxDiscountBasisPoints: 100, maxTotalMinor: nil),
                    ApprovalLimit(role: .rep, currency: "PLN", maxDiscountBasisPoints: 10_001, maxTotalMinor: nil),
                    ApprovalLimit(role: .rep, currency: "PLN", maxDiscountBasisPoints: 100, maxTotalMinor: -1)] {
            #expect(throws: HubError.self) { try storage.setApprovalLimit(bad, now: 4) }
        }
        #expect(try storage.approvalLimits() == expected)
        // The schema's own CHECKs stand behind the code's: a shell cannot write a 200% limit either.
        #expect(throws: (any Error).self) {
            try store.execute("INSERT INTO approval_limits(role, currency, max_discount_basis_points, max_total_minor, updated_at) VALUES ('rep', 'PLN', 20000, NULL, 5)")
        }
        #expect(try store.text("SELECT count(*) FROM approval_limits") == "2")
    }
}
