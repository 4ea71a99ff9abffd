//! The route table. Every unary endpoint answers POST on three equivalent paths, as m3o's
//! gateway did: `/{service}/{Endpoint}`, `/{service}/{Service}/{Endpoint}`, `/v1/{service}/{Endpoint}`;
//! the streams answer GET on theirs. Besides them: the web assets (`web.rs`), `/health` and
//! `/openapi.json`, and the operator's `/ready`, `/metrics` and `/admin` pages (`admin.rs`).
//!
//! Every route is registered from the lists here ([`ENDPOINTS`], [`PAGES`], the web assets,
//! the operator's paths), and
//! [`table`] lists the same routes from the same lists: `/openapi.json` describes each of them,
//! and `tests/openapi.rs` checks both that it does and that each answers as described.

use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use std::future::Future;

use serde::de::DeserializeOwned;

use super::call::{Call, Endpoint};
use super::error::{ApiError, At};
use super::{chat, chats, groups, stream, AppState};
use crate::error::Error;

/// How an endpoint is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// POST with a JSON body, a JSON answer.
    Unary,
    /// GET: a WebSocket upgrade, or Server-Sent Events.
    Stream,
}

/// Declares the endpoints once: [`ENDPOINTS`] lists them, `register_endpoints` routes them.
macro_rules! endpoints {
    ($($kind:ident $id:literal => $handler:path,)*) => {
        /// Every endpoint as `service.Endpoint`, in the order the route table registers them.
        pub const ENDPOINTS: &[(&str, Kind)] = &[$(($id, Kind::$kind)),*];

        fn register_endpoints(cfg: &mut web::ServiceConfig) {
            $(endpoints!(@register $kind, cfg, $id, $handler);)*
        }
    };
    (@register Unary, $cfg:ident, $id:literal, $handler:path) => { unary($cfg, $id, $handler) };
    (@register Stream, $cfg:ident, $id:literal, $handler:path) => { endpoint($cfg, Method::Get, $id, $handler) };
}

endpoints! {
    Unary "chat.New" => chat::new,
    Unary "chat.Send" => chat::send,
    Unary "chat.History" => chat::history,
    Stream "chat.Connect" => stream::connect,
    Unary "chat.Create" => groups::create,
    Unary "chat.Invite" => groups::invite,
    Stream "chat.Join" => stream::join,
    Unary "chat.Leave" => groups::leave,
    Unary "chat.Kick" => groups::kick,
    Unary "chat.List" => groups::list,
    Unary "chat.Delete" => groups::delete,
    Unary "chats.CreateChat" => chats::create_chat,
    Unary "chats.SendMessage" => chats::send_message,
    Unary "chats.ListMessages" => chats::list_messages,
}

/// A plain GET resource (HEAD too): its path, the name its errors carry, its answer.
pub struct Page {
    pub path: &'static str,
    pub id: &'static str,
    answer: fn(&HttpRequest) -> HttpResponse,
}

/// The GET resources besides the web assets.
pub const PAGES: [Page; 2] = [
    Page { path: "/health", id: "chatd.Health", answer: health },
    Page { path: "/openapi.json", id: "chatd.OpenAPI", answer: openapi },
];

/// Alive: answering at all. An admin endpoint (`admin.rs`).
fn health(req: &HttpRequest) -> HttpResponse {
    if let Err(refused) = super::admin::admitted(req, "chatd.Health") {
        return refused.error_response();
    }
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// The OpenAPI description of this server (`openapi/`), as its settings make it.
fn openapi(req: &HttpRequest) -> HttpResponse {
    match req.app_data::<web::Data<AppState>>() {
        Some(state) => HttpResponse::Ok().content_type("application/json").body(state.openapi.clone()),
        None => Error::Internal("the app has no state".into()).at("chatd.OpenAPI").error_response(),
    }
}

/// One route of the table: a path, its method, and the endpoint (or page) it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub path: String,
    /// `"POST"` or `"GET"` (GET resources answer HEAD too).
    pub method: &'static str,
    /// `service.Endpoint` for the endpoints, the page's name (`chatd.Health`, `chatd.Web`, ...) otherwise.
    pub id: &'static str,
}

/// Every route the server registers, from the same lists [`routes`] registers them from.
pub fn table() -> Vec<Route> {
    let mut table = Vec::new();
    for &(id, kind) in ENDPOINTS {
        let method = match kind {
            Kind::Unary => "POST",
            Kind::Stream => "GET",
        };
        table.extend(paths(id).into_iter().map(|path| Route { path, method, id }));
    }
    table.extend(super::web::paths().map(|path| Route { path: path.to_owned(), method: "GET", id: "chatd.Web" }));
    table.extend(PAGES.iter().map(|page| Route { path: page.path.to_owned(), method: "GET", id: page.id }));
    table.extend(super::admin::PATHS.iter().map(|&(path, id)| Route { path: path.to_owned(), method: "GET", id }));
    table
}

/// The three paths of an endpoint `service.Endpoint`.
pub fn paths(id: &str) -> [String; 3] {
    let (service, endpoint) = id.split_once('.').unwrap_or(("chatd", id));
    let mut title = service.to_owned();
    title[..1].make_ascii_uppercase();
    [format!("/{service}/{endpoint}"), format!("/{service}/{title}/{endpoint}"), format!("/v1/{service}/{endpoint}")]
}

/// One endpoint on its three paths for one method; any other method gets 405 naming it.
/// One resource per path: actix matches a resource with several paths by regex, a single plain
/// path by string comparison (measurably cheaper on the send path).
fn endpoint<H, Args>(cfg: &mut web::ServiceConfig, method: Method, id: &'static str, handler: H)
where
    H: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    H::Output: actix_web::Responder + 'static,
{
    for path in paths(id) {
        let (route, allow) = match method {
            Method::Post => (web::post(), "POST"),
            Method::Get => (web::get(), "GET"),
        };
        let refuse = move || async move { Err::<HttpResponse, _>(Error::MethodNotAllowed(allow).at(id)) };
        cfg.service(
            web::resource(path)
                .app_data(Endpoint(id))
                .route(route.to(handler.clone()))
                .default_service(web::to(refuse)),
        );
    }
}

/// A unary endpoint: its handler's errors become the endpoint's micro errors.
fn unary<F, Fut, T>(cfg: &mut web::ServiceConfig, id: &'static str, handler: F)
where
    F: Fn(Call<T>) -> Fut + Clone + 'static,
    Fut: Future<Output = Result<HttpResponse, Error>> + 'static,
    T: DeserializeOwned + 'static,
{
    let handler = move |call: Call<T>| {
        let answer = handler(call);
        async move { answer.await.map_err(|e| e.at(id)) }
    };
    endpoint(cfg, Method::Post, id, handler);
}

enum Method {
    /// Unary calls: a JSON body in, a JSON body out.
    Post,
    /// Streams: a WebSocket upgrade or Server-Sent Events.
    Get,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    register_endpoints(cfg);
    // The chat page and the browser client.
    super::web::routes(cfg);
    // `/ready`, `/metrics` and the operator page.
    super::admin::routes(cfg);
    // `/admin/backup`.
    super::backup::routes(cfg);
    for page in &PAGES {
        let answer = page.answer;
        let id = page.id;
        cfg.service(
            web::resource(page.path)
                .route(web::get().to(move |req: HttpRequest| async move { answer(&req) }))
                .route(web::head().to(move |req: HttpRequest| async move { answer(&req) }))
                .default_service(web::to(move || async move {
                    Err::<HttpResponse, _>(Error::MethodNotAllowed("GET, HEAD").at(id))
                })),
        );
    }
}

/// Any path that names no endpoint.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::no_route())
}
