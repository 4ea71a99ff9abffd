//! The `chat` service: New, Send, History (seeds 002-004).
//! Every handler runs the checks in the contract's order: 401 and namespace 403 (done by
//! [`Call`]), the 400s in their listed order, 404, membership 403, 429.

use actix_web::HttpResponse;
use serde::Deserialize;

use super::body::{self, given};
use super::call::Call;
use super::draft::DraftFields;
use super::views::{json_body, MessageReply, MessageView, Shape, V2MessageView};
use super::{AppState, Caller};
use crate::chat::{Page, Post, Read};
use crate::error::{Error, Field};
use crate::model::{ChatId, ChatMeta, Members, UserId};
use crate::registry::Open;

#[derive(Deserialize)]
pub struct NewRequest {
    user_ids: Option<Vec<String>>,
}

pub async fn new(call: Call<NewRequest>) -> Result<HttpResponse, Error> {
    let Call { state, caller, body } = call;
    let members = members(&state, body.user_ids.unwrap_or_default(), 1)?;
    let meta = open(&state, &caller, Open { ns: caller.ns.clone(), id: None, members, group: None }).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "chat_id": meta.id })))
}

/// Finds or creates a chat; a user token must be among its members, before and after.
pub async fn open(state: &AppState, caller: &Caller, open: Open) -> Result<ChatMeta, Error> {
    let reader = caller.reader();
    if let Some(sub) = &reader {
        if !open.members.contains(sub) {
            return Err(Error::Forbidden(format!("{sub} must be one of the chat's users")));
        }
    }
    let meta = state.open(open).await?;
    match reader {
        Some(sub) if !meta.user_ids.contains(&sub) => Err(Error::not_member(&sub)),
        _ => Ok(meta),
    }
}

/// Parses a member list: at least `min` distinct valid user ids, at most `limits.max_members`.
pub fn members(state: &AppState, user_ids: Vec<String>, min: usize) -> Result<Members, Error> {
    let limits = &state.settings.limits;
    let ids = user_ids.iter().map(|u| UserId::parse(u, limits.max_id_bytes)).collect::<Result<Vec<_>, _>>()?;
    let members = Members::new(ids);
    if members.len() < min {
        return Err(Error::Missing(Field::UserIds));
    }
    if members.len() > limits.max_members {
        return Err(Error::BadRequest(format!("a chat has at most {} members", limits.max_members)));
    }
    Ok(members)
}

/// A chat named by `chat_id` (a v1 call) or by `group_id` (a v2 call, answered in v2 shapes).
#[derive(Deserialize)]
pub struct Target {
    chat_id: Option<String>,
    group_id: Option<String>,
}

impl Target {
    fn id(&self) -> Option<&str> {
        given(&self.chat_id).or(given(&self.group_id))
    }

    fn v2(&self) -> bool {
        given(&self.chat_id).is_none() && given(&self.group_id).is_some()
    }
}

#[derive(Deserialize)]
pub struct SendRequest {
    #[serde(flatten)]
    target: Target,
    user_id: Option<String>,
    text: Option<String>,
    subject: Option<String>,
    #[serde(alias = "client")]
    client_id: Option<String>,
}

pub async fn send(call: Call<SendRequest>) -> Result<HttpResponse, Error> {
    let Call { state, caller, body } = call;
    let chat_id = body.target.id().ok_or(Error::Missing(Field::ChatId))?;
    let user_id = user_required(&caller, given(&body.user_id), Field::UserId)?;
    if given(&body.text).is_none() {
        return Err(Error::Missing(Field::Text));
    }
    let max_id = state.settings.limits.max_id_bytes;
    let chat_id = ChatId::parse(chat_id, max_id)?;
    let user_id = user_id.map(|u| UserId::parse(u, max_id)).transpose()?;
    let fields = DraftFields {
        text: body.text.as_deref(),
        subject: body.subject.as_deref(),
        client_id: body.client_id.as_deref(),
        id: None,
    };
    let unsent = fields.parse(&state.settings.limits)?;
    let draft = unsent.from(acting_as(&caller, user_id, Field::UserId)?);
    let post = Post { draft, limited: caller.reader().is_some() };
    let msg = state.post(&caller.ns, &chat_id, post).await?;
    if body.target.v2() {
        return Ok(HttpResponse::Ok().json(MessageReply { message: V2MessageView::new(&chat_id, &msg) }));
    }
    Ok(HttpResponse::Ok().json(MessageReply { message: MessageView::new(&chat_id, &msg) }))
}

/// A user id field may be omitted only by a user token (it then means the token's `sub`).
pub fn user_required<'a>(caller: &Caller, given: Option<&'a str>, field: Field) -> Result<Option<&'a str>, Error> {
    match (given, caller.reader()) {
        (None, None) => Err(Error::Missing(field)),
        (given, _) => Ok(given),
    }
}

/// The user a request acts as; a user token acting as someone else is 403.
pub fn acting_as(caller: &Caller, given: Option<UserId>, field: Field) -> Result<UserId, Error> {
    caller.acting_as(given)?.ok_or(Error::Missing(field))
}

#[derive(Deserialize)]
pub struct HistoryRequest {
    #[serde(flatten)]
    target: Target,
    #[serde(default, deserialize_with = "body::count")]
    limit: Option<u64>,
    #[serde(default, deserialize_with = "body::count")]
    before_seq: Option<u64>,
    #[serde(default, deserialize_with = "body::count")]
    after_seq: Option<u64>,
}

pub async fn history(call: Call<HistoryRequest>) -> Result<HttpResponse, Error> {
    let Call { state, caller, body } = call;
    let chat_id = body.target.id().ok_or(Error::Missing(Field::ChatId))?;
    let chat_id = ChatId::parse(chat_id, state.settings.limits.max_id_bytes)?;
    let limit = page_limit(&state, body.limit, state.settings.history.default_limit);
    let page = Page::History { limit, before: body.before_seq, after: body.after_seq };
    let messages = state.ask(&caller.ns, &chat_id, Read { page, reader: caller.reader() }).await??.messages().await?;
    let shape = if body.target.v2() { Shape::V2 } else { Shape::V1 };
    Ok(json_body(shape.page(&chat_id, &messages)))
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
