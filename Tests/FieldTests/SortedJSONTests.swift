@testable import Field
import Foundation
import Testing

/// `FieldJSON.payload` is written by `SortedJSON`, not JSONEncoder, since the hub renders every
/// uploaded document's JSON at ingest. The text must be the same to the byte (the hub compares a
/// held change with the office's by it), so every kind of document, with random field values
/// drawn from the texts reps type (Polish, Bulgarian, Russian, quotes, backslashes, every C0
/// control, emoji, combining marks) and integers up to both ends of Int64, is compared with
/// JSONEncoder's output.
@Suite("SortedJSON writes documents exactly as JSONEncoder does")
struct SortedJSONTests {
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let pieces: [String] = [
        "Zażółć gęślą jaźń", "Łódź", "Доставка до 10:00", "Магазин „Здравец“", "Чай «Ёлочка»", "ъ ь Ѣ", "\"cytat\"", "a\\b", "a/b",
        "😀", "e\u{301}", "\u{2028}", "\u{7F}", "\u{FEFF}", "", " ", "tab\tnew\nline\r", "\u{0}", "\u{1B}[2J", "ü", "中文",
    ] + (0..<0x20).map { String(UnicodeScalar(UInt8($0))) }

    static func text(_ random: inout Seeded) -> String {
        (0..<Int.random(in: 0...4, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined()
    }

    static func int(_ random: inout Seeded) -> Int64 {
        switch Int.random(in: 0...4, using: &random) {
        case 0: return [Int64.min, Int64.max, 0, -1, 1].randomElement(using: &random)!
        case 1: return Int64.random(in: Int64.min...Int64.max, using: &random)
        default: return Int64.random(in: -100_000...1_000_000_000, using: &random)
        }
    }

    static func optional<T>(_ random: inout Seeded, _ make: (inout Seeded) -> T) -> T? {
        Bool.random(using: &random) ? make(&random) : nil
    }

    static func document(_ random: inout Seeded) -> Document {
        switch Int.random(in: 0..<8, using: &random) {
        case 0:
            let lines = (0..<Int.random(in: 0...5, using: &random)).map { index in
                OrderLine(lineNo: Int64(index + 1), partNumber: text(&random), unit: text(&random), quantity: int(&random), baseQuantity: int(&random),
                          unitPriceMinor: int(&random), amountMinor: int(&random))
            }
            return .order(OrderDocument(id: text(&random), customerId: text(&random), state: OrderState.allCases.randomElement(using: &random)!,
                                        approval: Approval.allCases.randomElement(using: &random)!, holdReason: optional(&random, text),
                                        priceLevel: text(&random), currency: text(&random), totalMinor: int(&random), note: text(&random),
                                        createdAt: int(&random), confirmedAt: optional(&random, int), lines: lines))
        case 1:
            return .visit(VisitDocument(id: text(&random), customerId: text(&random), at: int(&random),
                                        outcome: VisitOutcome.allCases.randomElement(using: &random)!, note: text(&random)))
        case 2:
            return .payment(PaymentDocument(id: text(&random), customerId: text(&random), amountMinor: int(&random), currency: text(&random),
                                            method: PaymentMethod.allCases.randomElement(using: &random)!, receipt: text(&random), collectedAt: int(&random)))
        case 3:
            return .paymentVoid(PaymentVoidDocument(id: text(&random), paymentId: text(&random), customerId: text(&random), amountMinor: int(&random),
                                                    currency: text(&random), receipt: text(&random), reason: text(&random), at: int(&random)))
        case 4:
            let materials = (0..<Int.random(in: 0...3, using: &random)).map { _ in
                MaterialReservation(partNumber: text(&random), location: text(&random), quantity: int(&random), shortQuantity: int(&random))
            }
            return .displayRequest(DisplayRequestDocument(id: text(&random), customerId: text(&random), typeCode: text(&random), widthCm: int(&random),
                                                          heightCm: int(&random), depthCm: optional(&random, int), note: text(&random), state: text(&random),
                                                          at: int(&random), materials: materials))
        case 5:
            return .complaint(ComplaintDocument(id: text(&random), customerId: text(&random), orderRef: optional(&random, text), partNumber: optional(&random, text),
                                                category: ComplaintCategory.allCases.randomElement(using: &random)!, description: text(&random),
                                                state: text(&random), at: int(&random)))
        case 6:
            let lines = (0..<Int.random(in: 0...4, using: &random)).map { index in
                QuoteLine(lineNo: Int64(index + 1), partNumber: text(&random), quantity: int(&random), unitPriceMinor: int(&random), amountMinor: int(&random))
            }
            return .quote(QuoteDocument(id: text(&random), customerId: text(&random), currency: text(&random), discountBasisPoints: int(&random),
                                        totalMinor: int(&random), approval: Approval.allCases.randomElement(using: &random)!, holdReason: optional(&random, text),
                                        at: int(&random), lines: lines))
        default:
            return .maintenance(MaintenanceDocument(id: text(&random), equipmentId: text(&random), at: int(&random),
                                                    kind: MaintenanceKind.allCases.randomElement(using: &random)!, note: text(&random)))
        }
    }

    /// The document by SortedJSON itself (no fallback) and by JSONEncoder.
    static func both(_ document: Document) throws -> (sorted: String, encoder: String) {
        func pair<T: Encodable>(_ value: T) throws -> (sorted: String, encoder: String) { (try SortedJSON.text(value), try FieldJSON.encoderPayload(value)) }
        switch document {
        case .order(let value): return try pair(value)
        case .visit(let value): return try pair(value)
        case .payment(let value): return try pair(value)
        case .paymentVoid(let value): return try pair(value)
        case .displayRequest(let value): return try pair(value)
        case .complaint(let value): return try pair(value)
        case .quote(let value): return try pair(value)
        case .maintenance(let value): return try pair(value)
        }
    }

    @Test("20,000 random documents of every kind: the same bytes as JSONEncoder, and SortedJSON wrote them (no fallback)")
    func sameBytesAsJSONEncoder() throws {
        var random = Seeded(state: 20_261_204)
        var kinds = Set<String>()
        for index in 0..<20_000 {
            let document = Self.document(&random)
            let (sorted, theirs) = try Self.both(document)
            try #require(sorted == theirs, "document \(index): \(Array(sorted.utf8)) against \(Array(theirs.utf8))")
            #expect(try document.json() == theirs)
            kinds.insert(String(theirs.prefix(12)))
        }
        #expect(kinds.count > 8)
    }

    @Test("each C0 control, DEL, quotes, backslash and slash escape as JSONEncoder escapes them")
    func everyControlCharacter() throws {
        for scalar in 0..<0x80 {
            let text = String(UnicodeScalar(UInt8(scalar)))
            #expect(try SortedJSON.text([text]) == (try FieldJSON.encoderPayload([text])), "U+\(String(scalar, radix: 16))")
        }
    }

    struct WithDouble: Encodable { var price = 1.5; var name = "Żubr" }
    class Base: Encodable {
        var id = "X-1"
        func encode(to encoder: any Encoder) throws { var container = encoder.container(keyedBy: Keys.self); try container.encode(id, forKey: .id) }
        enum Keys: String, CodingKey { case id }
    }
    final class Derived: Base {
        var extra = "Ёлка"
        override func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: DerivedKeys.self)
            try super.encode(to: container.superEncoder())
            try container.encode(extra, forKey: .extra)
        }
        enum DerivedKeys: String, CodingKey { case extra }
    }

    @Test("what SortedJSON does not write (floating point, a super encoder) goes to JSONEncoder: payload's bytes are still JSONEncoder's")
    func fallsBackWhereItMust() throws {
        #expect(throws: SortedJSON.Unsupported.self) { try SortedJSON.text(WithDouble()) }
        #expect(try FieldJSON.payload(WithDouble()) == (try FieldJSON.encoderPayload(WithDouble())))
        #expect(throws: SortedJSON.Unsupported.self) { try SortedJSON.text(Derived()) }
        #expect(try FieldJSON.payload(Derived()) == (try FieldJSON.encoderPayload(Derived())))
    }
}
