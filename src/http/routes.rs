//! The route table. Every unary endpoint answers POST on three equivalent paths, as m3o's
//! gateway did: `/{service}/{Endpoint}`, `/{service}/{Service}/{Endpoint}`, `/v1/{service}/{Endpoint}`.

use actix_web::{web, HttpResponse};

use super::{chat, chats, groups, stream};
use crate::error::{ApiError, Error};

/// The three paths of one endpoint.
fn paths(service: &str, endpoint: &str) -> [String; 3] {
    let mut title = service.to_owned();
    title[..1].make_ascii_uppercase();
    [format!("/{service}/{endpoint}"), format!("/{service}/{title}/{endpoint}"), format!("/v1/{service}/{endpoint}")]
}

/// One endpoint on its three paths for one method; any other method gets 405 naming it.
fn endpoint<H, Args>(cfg: &mut web::ServiceConfig, method: Method, id: &'static str, handler: H)
where
    H: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    H::Output: actix_web::Responder + 'static,
{
    let (service, name) = id.split_once('.').unwrap_or(("chatd", id));
    let (route, allow) = match method {
        Method::Post => (web::post(), "POST"),
        Method::Get => (web::get(), "GET"),
    };
    cfg.service(web::resource(paths(service, name)).route(route.to(handler)).default_service(web::to(
        move || async move { Err::<HttpResponse, _>(Error::MethodNotAllowed(allow).at(id)) },
    )));
}

enum Method {
    /// Unary calls: a JSON body in, a JSON body out.
    Post,
    /// Streams: a WebSocket upgrade or Server-Sent Events.
    Get,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    use Method::{Get, Post};
    endpoint(cfg, Post, "chat.New", chat::new);
    endpoint(cfg, Post, "chat.Send", chat::send);
    endpoint(cfg, Post, "chat.History", chat::history);
    endpoint(cfg, Get, "chat.Connect", stream::connect);
    endpoint(cfg, Post, "chat.Create", groups::create_group);
    endpoint(cfg, Post, "chat.Invite", groups::invite);
    endpoint(cfg, Get, "chat.Join", stream::join);
    endpoint(cfg, Post, "chat.Leave", groups::leave);
    endpoint(cfg, Post, "chat.Kick", groups::kick);
    endpoint(cfg, Post, "chat.List", groups::list);
    endpoint(cfg, Post, "chat.Delete", groups::delete);
    endpoint(cfg, Post, "chats.CreateChat", chats::create_chat);
    endpoint(cfg, Post, "chats.SendMessage", chats::send_message);
    endpoint(cfg, Post, "chats.ListMessages", chats::list_messages);
    // The chat page and the browser client.
    super::web::routes(cfg);
    cfg.route("/health", web::get().to(|| async { HttpResponse::Ok().json(serde_json::json!({ "status": "ok" })) }));
}

/// Any path that names no endpoint.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::no_route())
}
