import Field
import Foundation
import Hub
import Hummingbird

/// The office web page: server-rendered HTML, no scripts, no front-end build. Four pages
/// (approval queue, missed syncs, devices, audit) behind a sign-in with an office token, which is
/// then kept in an HttpOnly, SameSite=Strict cookie scoped to /office: a page of another site
/// can neither read it nor send a decision with it. Every text that came from a device, the ERP or
/// a user is HTML-escaped.
struct OfficePages: Sendable {
    let desk: OfficeDesk
    static let cookie = "satchel_office"

    func add(to router: Router<BasicRequestContext>) {
        let desk = self.desk
        router.get("office/sign-in") { _, _ in page(title: "Sign in", user: nil, body: signInForm(message: nil)) }
        router.post("office/sign-in") { request, _ in
            var request = request
            let form = await formFields(&request)
            let token = form["token"]?.trimmingCharacters(in: .whitespacesAndNewlines)
            guard (try? desk.user(token: token)) != nil, let token else {
                var response = page(title: "Sign in", user: nil, body: signInForm(message: "That token is not valid (unknown, mistyped or expired). Ask the hub's administrator for a new one."))
                response.status = .unauthorized
                return response
            }
            var response = redirect("/office")
            response.headers[.setCookie] = "\(Self.cookie)=\(token); Path=/office; HttpOnly; SameSite=Strict; Max-Age=43200"
            return response
        }
        router.post("office/sign-out") { _, _ in
            var response = redirect("/office/sign-in")
            response.headers[.setCookie] = "\(Self.cookie)=; Path=/office; HttpOnly; SameSite=Strict; Max-Age=0"
            return response
        }
        router.get("office") { request, _ in
            signedIn(request) { user in
                let queue = try desk.approvals(for: user)
                return page(title: "Approvals", user: user, body: approvalsTable(queue, notice: request.uri.queryParameters["done"].map(String.init)))
            }
        }
        router.post("office/decide") { request, _ in
            var request = request
            let form = await formFields(&request)
            return signedIn(request) { user in
                guard sameOrigin(request) else { throw OfficeDesk.Refusal.forbidden("a decision must come from the office page itself") }
                guard let device = form["device"], let entity = form["entity"], let id = form["id"],
                      let decision = form["decision"].flatMap(OfficeDecision.init(rawValue:)) else {
                    throw OfficeDesk.Refusal.invalid("the form lacks device, entity, id or decision")
                }
                let reason = form["reason"].flatMap { $0.isEmpty ? nil : $0 }
                let decided = try desk.decide(decision, device: device, entity: entity, id: id, reason: reason, by: user)
                let notice = "\(decided.entity) \(decided.id): \(decided.approval ?? "-")"
                return redirect("/office?done=" + (notice.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""))
            }
        }
        router.get("office/missed-syncs") { request, _ in
            signedIn(request) { user in page(title: "Missed syncs", user: user, body: missedTable(try desk.missedSyncs(for: user))) }
        }
        router.get("office/devices") { request, _ in
            signedIn(request) { user in page(title: "Devices", user: user, body: devicesTable(try desk.devices(for: user))) }
        }
        router.get("office/audit") { request, _ in
            signedIn(request) { user in page(title: "Audit", user: user, body: auditTable(try desk.audit(for: user, limit: 200))) }
        }

        /// Runs a page for the cookie's user; no valid cookie sends the browser to sign in.
        @Sendable func signedIn(_ request: Request, _ body: (OfficeUser) throws -> Response) -> Response {
            let token = cookieValue(request, Self.cookie)
            guard let user = try? desk.user(token: token) else { return redirect("/office/sign-in") }
            do {
                return try body(user)
            } catch {
                let error = error as? OfficeDesk.Refusal ?? .storage("\(error)")
                var response = page(title: "Refused", user: user, body: "<p class=\"refusal\">\(html(error.description))</p><p><a href=\"/office\">Back to the approvals</a></p>")
                response.status = .init(code: error.status)
                return response
            }
        }
    }
}

// MARK: pages

func page(title: String, user: OfficeUser?, body: String) -> Response {
    let nav = user.map { user in
        """
        <nav><a href="/office">Approvals</a> · <a href="/office/missed-syncs">Missed syncs</a> · <a href="/office/devices">Devices</a> · <a href="/office/audit">Audit</a>
        <form method="post" action="/office/sign-out" class="inline"><button type="submit">Sign out</button></form>
        <span class="who">\(html(user.name)) (\(html(user.role.rawValue))\(user.territory.map { ", " + html($0) } ?? ""))</span></nav>
        """
    } ?? ""
    let text = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(html(title)) · Satchel office</title>
        <style>
        body{font-family:sans-serif;margin:1.5em;color:#222}nav{margin-bottom:1em}nav a{margin-right:.3em}
        table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.3em .6em;text-align:left}th{background:#eee}
        .inline{display:inline}.who{float:right;color:#555}.refusal{color:#a00}.notice{color:#060}.late{color:#a00}
        </style></head>
        <body><h1>\(html(title))</h1>\(nav)\(body)</body></html>
        """
    return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
                                           .init("Content-Security-Policy")!: "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"],
                    body: .init(byteBuffer: ByteBuffer(string: text)))
}

func signInForm(message: String?) -> String {
    (message.map { "<p class=\"refusal\">\(html($0))</p>" } ?? "") + """
        <form method="post" action="/office/sign-in">
        <label for="token">Office token</label> <input id="token" name="token" type="password" size="72" autocomplete="off" required>
        <button id="sign-in" type="submit">Sign in</button></form>
        <p>A token comes from the hub's administrator: <code>satchel-hub user token NAME</code>.</p>
        """
}

func approvalsTable(_ queue: [OfficeDocument], notice: String?) -> String {
    let done = notice.map { "<p class=\"notice\" id=\"notice\">Decided: \(html($0))</p>" } ?? ""
    guard !queue.isEmpty else { return done + "<p id=\"empty\">Nothing waits for an approval.</p>" }
    let rows = queue.map { document in
        let key = "\(document.device)/\(document.entity)/\(document.id)"
        return """
            <tr id="\(html(key))"><td>\(html(document.entity))</td><td>\(html(document.id))</td><td>\(html(document.rep ?? "-"))</td>
            <td>\(html(document.customer ?? "-"))</td><td>\(html(document.state ?? "-"))</td>
            <td>\(html(document.totalMinor.map { Money.format($0, document.currency ?? "") } ?? "-"))</td>
            <td>\(html(document.discountBasisPoints.map(Percent.format) ?? "-"))</td><td>\(html(document.holdReason ?? "-"))</td>
            <td>\(html(document.needs ?? "-"))</td><td>\(readable(document.receivedAt))</td>
            <td><form method="post" action="/office/decide" class="inline">
            <input type="hidden" name="device" value="\(html(document.device))"><input type="hidden" name="entity" value="\(html(document.entity))">
            <input type="hidden" name="id" value="\(html(document.id))">
            <input name="reason" placeholder="reason" maxlength="500">
            <button type="submit" name="decision" value="approve">Approve</button>
            <button type="submit" name="decision" value="reject">Reject</button></form></td></tr>
            """
    }
    return done + "<table id=\"approvals\"><tr><th>Kind</th><th>Id</th><th>Rep</th><th>Customer</th><th>State</th><th>Value</th><th>Discount</th><th>Why held</th><th>Needs</th><th>Received</th><th>Decision</th></tr>"
        + rows.joined() + "</table>"
}

func missedTable(_ missed: [MissedSync]) -> String {
    guard !missed.isEmpty else { return "<p>Every rep synced within the last \(SyncRule.hours) hours.</p>" }
    return "<table id=\"missed\"><tr><th>Rep</th><th>Name</th><th>Devices</th><th>Last successful sync</th><th>Last error</th></tr>" + missed.map {
        "<tr><td>\(html($0.rep))</td><td>\(html($0.name))</td><td>\(html($0.devices.joined(separator: ", ")))</td>"
            + "<td class=\"late\">\($0.lastSuccessfulSync.map(readable) ?? "never")</td><td>\(html($0.lastError ?? "-"))</td></tr>"
    }.joined() + "</table>"
}

func devicesTable(_ devices: [OfficeDevice]) -> String {
    "<table id=\"devices\"><tr><th>Device</th><th>Rep</th><th>In service</th><th>Last successful sync</th><th>Last result</th></tr>" + devices.map {
        "<tr><td>\(html($0.id))</td><td>\(html($0.rep))</td><td>\($0.revoked ? "revoked" : "yes")</td>"
            + "<td>\($0.lastSuccessfulSync.map(readable) ?? "never")</td><td>\(html($0.lastResult ?? "-"))\($0.lastError.map { ": " + html($0) } ?? "")</td></tr>"
    }.joined() + "</table>"
}

func auditTable(_ entries: [AuditEntry]) -> String {
    "<table id=\"audit\"><tr><th>Ended</th><th>Device</th><th>Rep</th><th>Mode</th><th>Up / down bytes</th><th>Result</th></tr>" + entries.map {
        "<tr><td>\(readable($0.endedAt))</td><td>\(html($0.device ?? "-"))</td><td>\(html($0.rep ?? "-"))</td><td>\(html($0.mode ?? "-"))</td>"
            + "<td>\($0.bytesUp) / \($0.bytesDown)</td><td>\(html($0.result))\($0.error.map { ": " + html($0) } ?? "")</td></tr>"
    }.joined() + "</table>"
}

// MARK: helpers

/// Text made safe inside HTML elements and double-quoted attributes; control characters shown
/// as U+FFFD so nothing a device sent can shape the page.
func html(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count)
    for scalar in text.unicodeScalars {
        switch scalar {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default:
            if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || (0x202A...0x202E).contains(scalar.value) || (0x2066...0x2069).contains(scalar.value) {
                out += "\u{FFFD}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out
}

/// A Unix-ms instant as the office reads it (UTC).
func readable(_ milliseconds: Int64) -> String {
    let date = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC")!
    let c = calendar.dateComponents([.year, .month, .day, .hour, .minute], from: date)
    func two(_ value: Int?) -> String { let v = value ?? 0; return v < 10 ? "0\(v)" : "\(v)" }
    return "\(c.year ?? 0)-\(two(c.month))-\(two(c.day)) \(two(c.hour)):\(two(c.minute)) UTC"
}

func redirect(_ location: String) -> Response {
    Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"])
}

func cookieValue(_ request: Request, _ name: String) -> String? {
    for header in request.headers[values: .cookie] {
        for pair in header.split(separator: ";") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == name { return String(parts[1]) }
        }
    }
    return nil
}

/// A state-changing form must come from this server's own page: when the browser says where
/// the request came from (Origin, or Referer), it must be this host.
func sameOrigin(_ request: Request) -> Bool {
    guard let host = request.head.authority else { return false }
    for value in [request.headers[.origin], request.headers[.referer]] {
        if let value {
            guard let url = URL(string: value), let origin = url.host else { return false }
            return origin + (url.port.map { ":\($0)" } ?? "") == host || origin == host
        }
    }
    return true
}

/// The fields of an application/x-www-form-urlencoded body (at most 16 KiB).
func formFields(_ request: inout Request) async -> [String: String] {
    guard let buffer = try? await request.collectBody(upTo: 16 * 1024) else { return [:] }
    var fields: [String: String] = [:]
    for pair in String(buffer: buffer).split(separator: "&") {
        let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        let decode = { (text: Substring) in String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
        if let key = parts.first { fields[decode(key)] = parts.count == 2 ? decode(parts[1]) : "" }
    }
    return fields
}
