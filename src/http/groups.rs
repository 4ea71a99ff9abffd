//! The chat service's group endpoints (m3o chat v2): Create, Invite, Leave, Kick, List, Delete.
//! `Join` is a stream and lives in `stream.rs`. A group is a chat with a name: everything the
//! chat endpoints do works on it, with `group_id` for `chat_id`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::body::{self, given};
use super::chat::{acting_as, bounded, create, members, user_required};
use super::AppState;
use crate::error::{ApiError, Error, Field};
use crate::model::{ChatId, ChatMeta, UserId};
use crate::registry::{Change, Create, Delete, GroupSpec, List, Update};

/// A group as the chat v2 endpoints show it.
#[derive(Serialize)]
struct GroupView<'a> {
    id: &'a str,
    name: &'a str,
    description: &'a str,
    created_at: i64,
    user_ids: &'a [UserId],
    private: bool,
}

impl<'a> GroupView<'a> {
    fn new(meta: &'a ChatMeta) -> Self {
        GroupView {
            id: meta.id.as_str(),
            name: &meta.name,
            description: &meta.description,
            created_at: meta.created_at,
            user_ids: meta.user_ids.as_slice(),
            private: meta.private,
        }
    }
}

fn group(meta: &ChatMeta) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "group": GroupView::new(meta) }))
}

/// The fields the group endpoints take; each uses some of them.
#[derive(Deserialize)]
struct GroupRequest {
    #[serde(alias = "chat_id")]
    group_id: Option<String>,
    user_id: Option<String>,
    name: Option<String>,
    description: Option<String>,
    user_ids: Option<Vec<String>>,
    #[serde(default)]
    private: bool,
}

async fn parse(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<(super::Caller, GroupRequest), Error> {
    let caller = state.caller(req)?;
    let body = body::parse(req, payload, state.settings.server.max_body_bytes).await?;
    Ok((caller, body))
}

fn group_id(state: &AppState, body: &GroupRequest) -> Result<ChatId, Error> {
    let id = given(&body.group_id).ok_or(Error::Missing(Field::ChatId))?;
    ChatId::parse(id, state.settings.limits.max_id_bytes)
}

pub async fn create_group(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    async {
        let (caller, body) = parse(&state, &req, payload).await?;
        let mut members = members(&state, body.user_ids.unwrap_or_default(), 0)?;
        // A user creating a group is in it.
        if let Some(sub) = caller.reader() {
            members.insert(sub);
        }
        let limits = &state.settings.limits;
        let spec = GroupSpec {
            name: bounded(body.name.as_deref().unwrap_or(""), limits.max_subject_bytes, "name")?,
            description: bounded(body.description.as_deref().unwrap_or(""), limits.max_text_bytes, "description")?,
            private: body.private,
        };
        let meta =
            create(&state, &caller, Create { ns: caller.ns.clone(), id: None, members, group: Some(spec) }).await?;
        Ok(group(&meta))
    }
    .await
    .map_err(|e: Error| e.at("chat.Create"))
}

/// Invite, Leave and Kick: a group id, a user id, one change.
async fn change(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
    make: fn(UserId) -> Change,
) -> Result<HttpResponse, Error> {
    let (caller, body) = parse(state, req, payload).await?;
    let id = given(&body.group_id).ok_or(Error::Missing(Field::ChatId))?;
    let user = user_required(&caller, given(&body.user_id), Field::UserId)?;
    let id = ChatId::parse(id, state.settings.limits.max_id_bytes)?;
    let user = user.map(|u| UserId::parse(u, state.settings.limits.max_id_bytes)).transpose()?;
    let change = make(user.clone().or(caller.reader()).ok_or(Error::Missing(Field::UserId))?);
    // Leaving acts as the user; inviting and kicking act on someone else, as a member.
    if let Change::Leave(_) = change {
        acting_as(&caller, user, Field::UserId)?;
    }
    let update = Update { ns: caller.ns.clone(), id, change, by: caller.reader() };
    let meta = state.registry.send(update).await.map_err(|e| Error::Internal(e.to_string()))??;
    Ok(group(&meta))
}

pub async fn invite(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    change(&state, &req, payload, Change::Invite).await.map_err(|e| e.at("chat.Invite"))
}

pub async fn leave(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    change(&state, &req, payload, Change::Leave).await.map_err(|e| e.at("chat.Leave"))
}

pub async fn kick(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    change(&state, &req, payload, Change::Kick).await.map_err(|e| e.at("chat.Kick"))
}

pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    async {
        let (caller, body) = parse(&state, &req, payload).await?;
        let user = user_required(&caller, given(&body.user_id), Field::UserId)?;
        let user = user.map(|u| UserId::parse(u, state.settings.limits.max_id_bytes)).transpose()?;
        let user = acting_as(&caller, user, Field::UserId)?;
        let groups = state
            .registry
            .send(List { ns: caller.ns.clone(), user })
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        let views: Vec<_> = groups.iter().map(GroupView::new).collect();
        Ok(HttpResponse::Ok().json(serde_json::json!({ "groups": views })))
    }
    .await
    .map_err(|e: Error| e.at("chat.List"))
}

pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    async {
        let (caller, body) = parse(&state, &req, payload).await?;
        let id = group_id(&state, &body)?;
        let delete = Delete { ns: caller.ns.clone(), id, by: caller.reader() };
        let meta = state.registry.send(delete).await.map_err(|e| Error::Internal(e.to_string()))??;
        Ok(group(&meta))
    }
    .await
    .map_err(|e: Error| e.at("chat.Delete"))
}
