//! The route table. Every unary endpoint answers POST on three equivalent paths, as m3o's
//! gateway did: `/{service}/{Endpoint}`, `/{service}/{Service}/{Endpoint}`, `/v1/{service}/{Endpoint}`.

use actix_web::{web, HttpResponse};

use std::future::Future;

use serde::de::DeserializeOwned;

use super::call::{Call, Endpoint};
use super::error::{ApiError, At};
use super::{chat, chats, groups, stream};
use crate::error::Error;

/// The three paths of one endpoint.
fn paths(service: &str, endpoint: &str) -> [String; 3] {
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
    let (service, name) = id.split_once('.').unwrap_or(("chatd", id));
    for path in paths(service, name) {
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
    unary(cfg, "chat.New", chat::new);
    unary(cfg, "chat.Send", chat::send);
    unary(cfg, "chat.History", chat::history);
    endpoint(cfg, Method::Get, "chat.Connect", stream::connect);
    unary(cfg, "chat.Create", groups::create);
    unary(cfg, "chat.Invite", groups::invite);
    endpoint(cfg, Method::Get, "chat.Join", stream::join);
    unary(cfg, "chat.Leave", groups::leave);
    unary(cfg, "chat.Kick", groups::kick);
    unary(cfg, "chat.List", groups::list);
    unary(cfg, "chat.Delete", groups::delete);
    unary(cfg, "chats.CreateChat", chats::create_chat);
    unary(cfg, "chats.SendMessage", chats::send_message);
    unary(cfg, "chats.ListMessages", chats::list_messages);
    // The chat page and the browser client.
    super::web::routes(cfg);
    cfg.route("/health", web::get().to(|| async { HttpResponse::Ok().json(serde_json::json!({ "status": "ok" })) }));
}

/// Any path that names no endpoint.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::no_route())
}
