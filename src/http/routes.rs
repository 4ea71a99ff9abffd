//! The route table. Every unary endpoint answers POST on three equivalent paths, as m3o's
//! gateway did: `/{service}/{Endpoint}`, `/{service}/{Service}/{Endpoint}`, `/v1/{service}/{Endpoint}`.

use actix_web::{web, HttpResponse};

use super::{chat, chats, stream};
use crate::error::{ApiError, Error};

/// The three paths of one endpoint.
fn paths(service: &str, endpoint: &str) -> [String; 3] {
    let mut title = service.to_owned();
    title[..1].make_ascii_uppercase();
    [
        format!("/{service}/{endpoint}"),
        format!("/{service}/{title}/{endpoint}"),
        format!("/v1/{service}/{endpoint}"),
    ]
}

/// One POST endpoint on its three paths; any other method gets 405 naming it.
fn unary<H, Args>(
    cfg: &mut web::ServiceConfig,
    service: &str,
    endpoint: &'static str,
    error_id: &'static str,
    handler: H,
) where
    H: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    H::Output: actix_web::Responder + 'static,
{
    cfg.service(
        web::resource(paths(service, endpoint))
            .route(web::post().to(handler))
            .default_service(web::to(move || async move {
                Err::<HttpResponse, _>(Error::MethodNotAllowed("POST").at(error_id))
            })),
    );
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    unary(cfg, "chat", "New", "chat.New", chat::new);
    unary(cfg, "chat", "Send", "chat.Send", chat::send);
    unary(cfg, "chat", "History", "chat.History", chat::history);
    unary(
        cfg,
        "chats",
        "CreateChat",
        "chats.CreateChat",
        chats::create_chat,
    );
    unary(
        cfg,
        "chats",
        "SendMessage",
        "chats.SendMessage",
        chats::send_message,
    );
    unary(
        cfg,
        "chats",
        "ListMessages",
        "chats.ListMessages",
        chats::list_messages,
    );
    // Streams: GET (a WebSocket upgrade or Server-Sent Events) on Connect's three paths.
    cfg.service(
        web::resource(paths("chat", "Connect"))
            .route(web::get().to(stream::connect))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(Error::MethodNotAllowed("GET").at("chat.Connect"))
            })),
    );
    // The chat page and the browser client.
    super::web::routes(cfg);
    cfg.route(
        "/health",
        web::get().to(|| async { HttpResponse::Ok().json(serde_json::json!({ "status": "ok" })) }),
    );
}

/// Any path that names no endpoint.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::no_route())
}
