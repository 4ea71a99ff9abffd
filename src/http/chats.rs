//! The `chats` service: CreateChat, SendMessage, ListMessages (seeds 000-001).
//! The same chats as the `chat` service, seen with `author_id` for `user_id`.

use actix_web::HttpResponse;
use serde::Deserialize;

use super::body::{self, given};
use super::call::Call;
use super::chat::{acting_as, members, open, page_limit, user_required};
use super::draft::DraftFields;
use super::views::{json_body, AuthoredView, ChatView, MessageReply, Shape};
use crate::chat::{Page, Post, Read};
use crate::error::{Error, Field};
use crate::model::{ChatId, UserId};
use crate::registry::Open;

/// The `chats` service's default page size.
const DEFAULT_LIMIT: u64 = 25;

#[derive(Deserialize)]
pub struct CreateChatRequest {
    id: Option<String>,
    user_ids: Option<Vec<String>>,
}

pub async fn create_chat(call: Call<CreateChatRequest>) -> Result<HttpResponse, Error> {
    let Call { state, caller, body } = call;
    let members = members(&state, body.user_ids.unwrap_or_default(), 2)?;
    let id = given(&body.id).map(|id| ChatId::parse(id, state.settings.limits.max_id_bytes)).transpose()?;
    let meta = open(&state, &caller, Open { ns: caller.ns.clone(), id, members, group: None }).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "chat": ChatView::new(&meta) })))
}

#[derive(Deserialize)]
pub struct SendMessageRequest {
    #[serde(alias = "group_id")]
    chat_id: Option<String>,
    author_id: Option<String>,
    text: Option<String>,
    id: Option<String>,
}

pub async fn send_message(call: Call<SendMessageRequest>) -> Result<HttpResponse, Error> {
    let Call { state, caller, body } = call;
    let author_id = user_required(&caller, given(&body.author_id), Field::AuthorId)?;
    let chat_id = given(&body.chat_id).ok_or(Error::Missing(Field::ChatId))?;
    if given(&body.text).is_none() {
        return Err(Error::Missing(Field::Text));
    }
    let max_id = state.settings.limits.max_id_bytes;
    let author_id = author_id.map(|u| UserId::parse(u, max_id)).transpose()?;
    let chat_id = ChatId::parse(chat_id, max_id)?;
    let fields = DraftFields { text: body.text.as_deref(), id: body.id.as_deref(), ..DraftFields::default() };
    let unsent = fields.parse(&state.settings.limits)?;
    let post = Post {
        draft: unsent.from(acting_as(&caller, author_id, Field::AuthorId)?),
        limited: caller.reader().is_some(),
    };
    let msg = state.post(&caller.ns, &chat_id, post).await?;
    Ok(HttpResponse::Ok().json(MessageReply { message: AuthoredView::new(&chat_id, &msg) }))
}

#[derive(Deserialize)]
pub struct ListMessagesRequest {
    #[serde(alias = "group_id")]
    chat_id: Option<String>,
    #[serde(default, deserialize_with = "body::count")]
    limit: Option<u64>,
    #[serde(default, deserialize_with = "body::count")]
    offset: Option<u64>,
    order: Option<String>,
}

pub async fn list_messages(call: Call<ListMessagesRequest>) -> Result<HttpResponse, Error> {
    let Call { state, caller, body } = call;
    let chat_id = given(&body.chat_id).ok_or(Error::Missing(Field::ChatId))?;
    let chat_id = ChatId::parse(chat_id, state.settings.limits.max_id_bytes)?;
    let newest_first = match body.order.as_deref() {
        None | Some("") | Some("desc") => true,
        Some("asc") => false,
        Some(other) => return Err(Error::BadRequest(format!("order must be \"asc\" or \"desc\", not {other:?}"))),
    };
    let limit = page_limit(&state, body.limit, DEFAULT_LIMIT);
    let page = Page::List { limit, offset: body.offset.unwrap_or(0), newest_first };
    let messages = state.ask(&caller.ns, &chat_id, Read { page, reader: caller.reader() }).await??.messages().await?;
    Ok(json_body(Shape::Authored.page(&chat_id, &messages)))
}
