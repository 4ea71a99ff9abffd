//! The `chat` service: New, Send, History (seeds 002-004).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::body::{self, given};
use super::AppState;
use crate::chat::{self as chat_actor, Page, Read};
use crate::error::{ApiError, Error, Field};
use crate::model::{ChatId, ClientId, Members, MessageView, UserId};
use crate::registry::Create;

#[derive(Deserialize)]
struct NewRequest {
    user_ids: Option<Vec<String>>,
}

pub async fn new(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    new_chat(&state, &req, payload)
        .await
        .map_err(|e| e.at("chat.New"))
}

async fn new_chat(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Error> {
    let ns = state.namespace(req)?;
    let body: NewRequest = body::parse(req, payload, state.settings.server.max_body_bytes).await?;
    let members = members(state, body.user_ids.unwrap_or_default(), 1)?;
    let meta = state
        .registry
        .send(Create {
            ns,
            id: None,
            members,
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "chat_id": meta.id })))
}

/// Parses a member list: at least `min` distinct valid user ids, at most `limits.max_members`.
pub fn members(state: &AppState, user_ids: Vec<String>, min: usize) -> Result<Members, Error> {
    let limits = &state.settings.limits;
    let ids = user_ids
        .iter()
        .map(|u| UserId::parse(u, limits.max_id_bytes))
        .collect::<Result<Vec<_>, _>>()?;
    let members = Members::new(ids)
        .filter(|m| m.len() >= min)
        .ok_or(Error::Missing(Field::UserIds))?;
    if members.len() > limits.max_members {
        return Err(Error::BadRequest(format!(
            "a chat has at most {} members",
            limits.max_members
        )));
    }
    Ok(members)
}

#[derive(Deserialize)]
struct SendRequest {
    chat_id: Option<String>,
    user_id: Option<String>,
    text: Option<String>,
    subject: Option<String>,
    client_id: Option<String>,
}

pub async fn send(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    send_message(&state, &req, payload)
        .await
        .map_err(|e| e.at("chat.Send"))
}

async fn send_message(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Error> {
    let ns = state.namespace(req)?;
    let body: SendRequest = body::parse(req, payload, state.settings.server.max_body_bytes).await?;
    let chat_id = given(&body.chat_id).ok_or(Error::Missing(Field::ChatId))?;
    let user_id = given(&body.user_id).ok_or(Error::Missing(Field::UserId))?;
    let text = given(&body.text).ok_or(Error::Missing(Field::Text))?;
    let max_id = state.settings.limits.max_id_bytes;
    let chat_id = ChatId::parse(chat_id, max_id)?;
    let send = chat_actor::Post {
        user_id: UserId::parse(user_id, max_id)?,
        text: bounded(text, state.settings.limits.max_text_bytes, "text")?,
        subject: bounded(
            body.subject.as_deref().unwrap_or(""),
            state.settings.limits.max_subject_bytes,
            "subject",
        )?,
        client_id: given(&body.client_id)
            .map(|c| ClientId::parse(c, max_id))
            .transpose()?,
        id: None,
    };
    let msg = state.ask(&ns, &chat_id, send).await??;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "message": MessageView::new(&chat_id, &msg) })))
}

/// Text fields have a size limit of their own, below the body limit.
pub fn bounded(text: &str, max: usize, what: &str) -> Result<String, Error> {
    if text.len() > max {
        return Err(Error::TooLarge(format!(
            "{what} is longer than {max} bytes"
        )));
    }
    Ok(text.to_owned())
}

#[derive(Deserialize)]
struct HistoryRequest {
    chat_id: Option<String>,
    #[serde(default, deserialize_with = "body::count")]
    limit: Option<u64>,
    #[serde(default, deserialize_with = "body::count")]
    before_seq: Option<u64>,
    #[serde(default, deserialize_with = "body::count")]
    after_seq: Option<u64>,
}

pub async fn history(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    read_history(&state, &req, payload)
        .await
        .map_err(|e| e.at("chat.History"))
}

async fn read_history(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Error> {
    let ns = state.namespace(req)?;
    let body: HistoryRequest =
        body::parse(req, payload, state.settings.server.max_body_bytes).await?;
    let chat_id = given(&body.chat_id).ok_or(Error::Missing(Field::ChatId))?;
    let chat_id = ChatId::parse(chat_id, state.settings.limits.max_id_bytes)?;
    let page = Page::History {
        limit: page_limit(state, body.limit, state.settings.history.default_limit),
        before: body.before_seq,
        after: body.after_seq,
    };
    let messages = state.ask(&ns, &chat_id, Read(page)).await??;
    let views: Vec<_> = messages
        .iter()
        .map(|m| MessageView::new(&chat_id, m))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "messages": views })))
}

/// A page size: 0 or absent means `default`, and nothing exceeds `history.max_limit`.
pub fn page_limit(state: &AppState, limit: Option<u64>, default: u64) -> u64 {
    let max = state.settings.history.max_limit.max(1);
    match limit {
        None | Some(0) => default,
        Some(n) => n,
    }
    .clamp(1, max)
}
