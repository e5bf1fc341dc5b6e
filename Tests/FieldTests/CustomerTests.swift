import Field
import Testing

@Suite("Customers: the credit check and search")
struct CustomerTests {
    @Test("the card shows discipline with its colour, money, history, top parts and talking points")
    func card() throws {
        let fixture = try Fixture()
        let card = try Customers(fixture.device).card("CPL1")
        #expect(card.discipline == .strict && card.colour == "green")
        #expect(card.creditLimitMinor == 10_000_00 && card.balanceMinor == 2_000_00)
        #expect(card.recentOrders.map(\.ref) == ["ERP-2", "ERP-1", "ERP-0"])
        #expect(card.ordersLast365Days == 2 && card.boughtLast365DaysMinor == 275_00 && card.lateShareLast365Days == 50)
        #expect(card.topParts.first == Customers.TopPart(partNumber: "P2", name: "Лепило за плочки 25 кг", quantity: 35, amountMinor: 175_00))
        #expect(card.talkingPoints == ["Pyta o gres 60×120", "Właściciel woli kontakt rano"])
        #expect(card.priceLevels == ["customer", "dealer"])
        #expect(try Customers(fixture.device).card("CBG1").colour == "yellow")
        #expect(try Customers(fixture.device).card("CRU1").colour == "red")
        #expect(throws: FieldError.unknownCustomer("C404")) { try Customers(fixture.device).card("C404") }
    }

    @Test("search ignores case and diacritics in Latin and Cyrillic names", arguments: [
        ("zolw", "CPL1"), ("ŻÓŁW", "CPL1"), ("hurtownia żółw", "CPL1"), ("витоша", "CBG1"), ("ВИТОША", "CBG1"), ("березка", "CRU1"), ("БЕРЁЗКА", "CRU1"), ("CRU1", "CRU1"),
    ])
    func search(query: String, expected: String) throws {
        let fixture = try Fixture()
        #expect(try Customers(fixture.device).find(query).map(\.id) == [expected])
    }

    @Test("LIKE wildcards typed by the rep are taken literally")
    func wildcards() throws {
        let fixture = try Fixture()
        #expect(try Customers(fixture.device).find("%").isEmpty)
        #expect(try Customers(fixture.device).find("_").isEmpty)
    }

    @Test("folding table", arguments: [
        ("Łódź", "lodz"), ("Zażółć gęślą jaźń", "zazolc gesla jazn"), ("ВАСИЛЕВ", "василев"), ("Ёлка", "елка"), ("Йордан", "иордан"),
        ("Straße", "strasse"), ("Čeština", "cestina"), ("ІЇЄҐ", "іїєґ"),
    ])
    func folding(input: String, folded: String) {
        #expect(SearchFolding.fold(input) == folded)
    }

    @Test("money parses either decimal separator and refuses the rest")
    func money() throws {
        #expect(try Money.parseMinor("123") == 123_00)
        #expect(try Money.parseMinor("123.4") == 123_40)
        #expect(try Money.parseMinor("0,05") == 5)
        for bad in ["", "-1", "1.234", "1,2,3", "12a", ".5", "5.", "1 000"] {
            #expect(throws: FieldError.self, "\(bad)") { try Money.parseMinor(bad) }
        }
        #expect(Money.format(-5, "PLN") == "-0.05 PLN")
        #expect(Money.format(123_456_78, "BGN") == "123456.78 BGN")
    }
}
