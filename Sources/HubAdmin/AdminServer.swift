import Foundation
public import Hub
import Hummingbird

/// The hub's HTTP face for the back office: the JSON admin API under `/api/v1` (bearer tokens,
/// docs/admin-api.yaml) and the server-rendered office web page under `/office` (the same token,
/// kept in an HttpOnly, SameSite=Strict cookie after signing in). Both go through `OfficeDesk`,
/// so a supervisor sees and decides only within their territory whichever face they use.
///
/// The storage calls are short SQLite reads and one small write transaction per decision; they
/// run on the server's event loop threads. The office is a handful of people, not the fleet:
/// the devices' sync server (`satchel-hub serve`) is a separate listener.
public struct AdminServer: Sendable {
    public let desk: OfficeDesk
    public let host: String
    public let port: Int

    public init(desk: OfficeDesk, host: String, port: Int) {
        self.desk = desk; self.host = host; self.port = port
    }

    /// Serves until SIGTERM or SIGINT, then finishes the requests in flight. `onListening` gets
    /// the bound port (useful with port 0).
    public func run(onListening: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let app = Application(
            router: makeRouter(),
            configuration: .init(address: .hostname(host, port: port), serverName: "satchel-hub"),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? 0) })
        try await app.runService()
    }

    typealias Handler = @Sendable (Request, BasicRequestContext) async -> Response

    /// Every route of the API, once: registered from here, and the 405 for a method the API does
    /// not define on one of these paths is derived from the same list.
    static func apiRoutes(_ desk: OfficeDesk) -> [(path: String, method: HTTPRequest.Method, handler: Handler)] {
        [
            ("me", .get, { request, _ in answer { try desk.user(token: bearer(request)) } }),
            ("devices", .get, { request, _ in answer { try desk.devices(for: desk.user(token: bearer(request))) } }),
            ("reps", .get, { request, _ in answer { try desk.reps(for: desk.user(token: bearer(request))) } }),
            ("missed-syncs", .get, { request, _ in answer { try desk.missedSyncs(for: desk.user(token: bearer(request))) } }),
            ("approvals", .get, { request, _ in answer { try desk.approvals(for: desk.user(token: bearer(request))) } }),
            ("audit", .get, { request, _ in
                answer {
                    let user = try desk.user(token: bearer(request))
                    return try desk.audit(for: user, limit: query(request, "limit", as: Int.self) ?? 100)
                }
            }),
            ("documents", .get, { request, _ in
                answer {
                    let user = try desk.user(token: bearer(request))
                    let filter = DocumentFilter(rep: try query(request, "rep"), state: try query(request, "state"), entity: try query(request, "entity"),
                                                from: try query(request, "from", as: Int64.self), until: try query(request, "until", as: Int64.self),
                                                limit: try query(request, "limit", as: Int.self) ?? 500)
                    return try desk.documents(for: user, filter: filter)
                }
            }),
            ("documents/:device/:entity/:id/decision", .post, { request, context in
                var request = request
                let body = try? await request.collectBody(upTo: 16 * 1024)
                return answer {
                    let user = try desk.user(token: bearer(request))
                    let decision: DecisionRequest
                    do {
                        decision = try JSONDecoder().decode(DecisionRequest.self, from: Data((body ?? ByteBuffer()).readableBytesView))
                    } catch {
                        throw OfficeDesk.Refusal.invalid("the body must be JSON {\"decision\": \"approve\" or \"reject\", \"reason\": \"...\"} (at most 16 KiB)")
                    }
                    return try desk.decide(decision.decision, device: try parameter(context, "device"), entity: try parameter(context, "entity"),
                                           id: try parameter(context, "id"), reason: decision.reason, by: user)
                }
            }),
        ]
    }

    func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        let desk = self.desk
        let routes = Self.apiRoutes(desk)
        router.add(middleware: UndefinedMethodMiddleware(routes: routes.map { ("api/v1/" + $0.path, $0.method) }))
        let api = router.group("api/v1")
        for route in routes {
            api.on(RouterPath(route.path), method: route.method) { request, context in await route.handler(request, context) }
        }
        OfficePages(desk: desk).add(to: router)
        return router
    }
}

struct DecisionRequest: Decodable {
    var decision: OfficeDecision
    var reason: String?
}

struct ErrorBody: Encodable {
    var error: String
    var code: String
}

/// A JSON answer: the value with 200, or the refusal with its status and a body naming it.
func answer<T: Encodable>(_ body: () throws -> T) -> Response {
    do {
        return json(try body(), status: .ok)
    } catch {
        let error = error as? OfficeDesk.Refusal ?? .storage("\(error)")
        var response = json(ErrorBody(error: error.description, code: error.code), status: .init(code: error.status))
        if error == .unauthenticated { response.headers[.wwwAuthenticate] = "Bearer realm=\"satchel-hub\"" }
        return response
    }
}

func json<T: Encodable>(_ value: T, status: HTTPResponse.Status) -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    let data = (try? encoder.encode(value)) ?? Data("{\"error\":\"the answer could not be encoded\",\"code\":\"storage\"}".utf8)
    return Response(status: status, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
                    body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

/// The token of `Authorization: Bearer ...`; nil when there is none (refused as unauthenticated).
func bearer(_ request: Request) -> String? {
    guard let header = request.headers[.authorization] else { return nil }
    let parts = header.split(separator: " ", maxSplits: 1)
    guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
    return String(parts[1]).trimmingCharacters(in: .whitespaces)
}

func query(_ request: Request, _ name: String) throws(OfficeDesk.Refusal) -> String? {
    guard let value = request.uri.queryParameters[Substring(name)] else { return nil }
    guard value.count <= 200 else { throw .invalid("query parameter \(name): at most 200 characters") }
    return String(value)
}

func query<T: LosslessStringConvertible>(_ request: Request, _ name: String, as: T.Type) throws(OfficeDesk.Refusal) -> T? {
    guard let text = try query(request, name) else { return nil }
    guard let value = T(text) else { throw .invalid("query parameter \(name): \(text.prefix(40)) is not a whole number") }
    return value
}

func parameter(_ context: BasicRequestContext, _ name: String) throws(OfficeDesk.Refusal) -> String {
    // Path segments arrive percent-encoded; ids are compared as the device made them.
    guard let raw = context.parameters.get(name), let value = raw.removingPercentEncoding, !value.isEmpty, value.unicodeScalars.count <= 200 else {
        throw .invalid("path parameter \(name): 1 to 200 characters, percent-encoded")
    }
    return value
}

/// A method the API does not define, on a path it does: 405 with the method it allows (whatever
/// the method: TRACE, QUERY, ...), never a 404 that reads like a missing resource.
struct UndefinedMethodMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    /// The API's paths as segments (a `:name` segment matches any value) and the method each allows.
    let paths: [([Substring], HTTPRequest.Method)]

    init(routes: [(String, HTTPRequest.Method)]) {
        paths = routes.map { ($0.0.split(separator: "/"), $0.1) }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let segments = request.uri.path.split(separator: "/")
        for (pattern, allowed) in paths where pattern.count == segments.count && request.method != allowed
            && !(allowed == .get && request.method == .head) {
            if zip(pattern, segments).allSatisfy({ $0.0.hasPrefix(":") || $0.0 == $0.1 }) {
                var response = json(ErrorBody(error: "\(request.method.rawValue) is not defined here; use \(allowed.rawValue) (docs/admin-api.yaml)", code: "invalid"),
                                    status: .methodNotAllowed)
                response.headers[.allow] = allowed.rawValue
                return response
            }
        }
        return try await next(request, context)
    }
}
