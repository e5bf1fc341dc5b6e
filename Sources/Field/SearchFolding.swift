/// Folds names for search without ICU: lower case, Latin diacritics to their base letter
/// (ą→a, ł→l, ś→s, č→c, ß→ss), Cyrillic upper to lower case with ё→е and й→и, so a rep typing
/// "lodz" finds "Łódź" and "ВАСИЛЕВ" finds "Василев". The folded form is stored in an indexed
/// column, so the table here must never change meaning without re-folding stored rows.
public enum SearchFolding {
    public static func fold(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            let value = scalar.value
            switch value {
            case 0x41...0x5A:  // A-Z
                out.append(Unicode.Scalar(value + 0x20)!)
            case 0x410...0x42F:  // А-Я
                out.append(fold(cyrillicLower: value + 0x20))
            case 0x400...0x40F:  // Ѐ-Џ (Ё, Є, І, Ї, Ј, ...)
                out.append(fold(cyrillicLower: value + 0x50))
            case 0x430...0x45F:
                out.append(fold(cyrillicLower: value))
            case 0x490: out.append("ґ")
            default:
                if let replacement = latin[value] {
                    out.append(contentsOf: replacement.unicodeScalars)
                } else {
                    out.append(scalar)
                }
            }
        }
        return String(out)
    }

    private static func fold(cyrillicLower value: UInt32) -> Unicode.Scalar {
        switch value {
        case 0x451, 0x450: return "е"  // ё, ѐ
        case 0x439: return "и"  // й
        case 0x45D: return "и"  // ѝ
        default: return Unicode.Scalar(value)!
        }
    }

    /// Latin letters with diacritics used in Polish, Czech, Slovak, German, Romanian, Hungarian
    /// and the Baltic languages, upper and lower case.
    private static let latin: [UInt32: String] = {
        let pairs: [(String, String)] = [
            ("ąàáâãäåāă", "a"), ("ĄÀÁÂÃÄÅĀĂ", "a"), ("ćçčĉ", "c"), ("ĆÇČĈ", "c"), ("ďđ", "d"), ("ĎĐ", "d"),
            ("ęèéêëēěė", "e"), ("ĘÈÉÊËĒĚĖ", "e"), ("ìíîïīį", "i"), ("ÌÍÎÏĪĮ", "i"), ("łľĺ", "l"), ("ŁĽĹ", "l"),
            ("ńñňņ", "n"), ("ŃÑŇŅ", "n"), ("óòôõöőø", "o"), ("ÓÒÔÕÖŐØ", "o"), ("řŕ", "r"), ("ŘŔ", "r"),
            ("śšşș", "s"), ("ŚŠŞȘ", "s"), ("ťţț", "t"), ("ŤŢȚ", "t"), ("úùûüůűū", "u"), ("ÚÙÛÜŮŰŪ", "u"),
            ("ýÿ", "y"), ("ÝŸ", "y"), ("źżž", "z"), ("ŹŻŽ", "z"), ("ß", "ss"),
        ]
        var table: [UInt32: String] = [:]
        for (letters, base) in pairs {
            for scalar in letters.unicodeScalars { table[scalar.value] = base }
        }
        return table
    }()
}

extension FieldSchema {
    /// The working-set tables whose `name` has a folded twin `name_folded` (SearchFolding) that
    /// the device fills when it stores a row: the download and the hub's schema check both add it.
    public static let foldedNameTables: Set<String> = ["customers", "products"]
}
