//! The `chats` service: CreateChat, SendMessage, ListMessages (seeds 000-001).
//! The same chats as the `chat` service, seen with `author_id` for `user_id`.

use actix_web::HttpResponse;
use serde::{Deserialize, Serialize};

use super::body::{self, given};
use super::call::Call;
use super::chat::{acting_as, bounded, create, members, page_limit, user_required};
use super::MessageReply;
use crate::chat::{Page, Post, Read};
use crate::error::{Error, Field};
use crate::model::{ChatId, ChatMeta, Message, MessageId, UserId};
use crate::registry::Create;

/// The `chats` service's default page size.
const DEFAULT_LIMIT: u64 = 25;

#[derive(Serialize)]
struct ChatView<'a> {
    id: &'a str,
    user_ids: &'a [UserId],
    created_at: i64,
}

impl<'a> ChatView<'a> {
    fn new(meta: &'a ChatMeta) -> Self {
        ChatView { id: meta.id.as_str(), user_ids: meta.user_ids.as_slice(), created_at: meta.created_at }
    }
}

#[derive(Serialize)]
struct MessageView<'a> {
    id: &'a str,
    author_id: &'a str,
    chat_id: &'a str,
    text: &'a str,
    sent_at: i64,
    seq: u64,
}

impl<'a> MessageView<'a> {
    fn new(chat_id: &'a ChatId, m: &'a Message) -> Self {
        MessageView {
            id: m.id.as_str(),
            author_id: m.user_id.as_str(),
            chat_id: chat_id.as_str(),
            text: &m.text,
            sent_at: m.sent_at,
            seq: m.seq,
        }
    }
}

#[derive(Deserialize)]
pub struct CreateChatRequest {
    id: Option<String>,
    user_ids: Option<Vec<String>>,
}

pub async fn create_chat(call: Call<CreateChatRequest>) -> Result<HttpResponse, Error> {
    let Call { state, caller, body } = call;
    let members = members(&state, body.user_ids.unwrap_or_default(), 2)?;
    let id = given(&body.id).map(|id| ChatId::parse(id, state.settings.limits.max_id_bytes)).transpose()?;
    let meta = create(&state, &caller, Create { ns: caller.ns.clone(), id, members, group: None }).await?;
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
    let text = given(&body.text).ok_or(Error::Missing(Field::Text))?;
    let limits = &state.settings.limits;
    let author_id = author_id.map(|u| UserId::parse(u, limits.max_id_bytes)).transpose()?;
    let chat_id = ChatId::parse(chat_id, limits.max_id_bytes)?;
    let id = given(&body.id).map(|id| MessageId::parse(id, limits.max_id_bytes)).transpose()?;
    let text = bounded(text, limits.max_text_bytes, "text")?;
    let post = Post {
        user_id: acting_as(&caller, author_id, Field::AuthorId)?,
        text,
        subject: String::new(),
        client_id: None,
        id,
        limited: caller.reader().is_some(),
    };
    let msg = state.ask(&caller.ns, &chat_id, post).await??;
    Ok(HttpResponse::Ok().json(MessageReply { message: MessageView::new(&chat_id, &msg) }))
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
    let messages = state.ask(&caller.ns, &chat_id, Read { page, reader: caller.reader() }).await??;
    let views: Vec<_> = messages.iter().map(|m| MessageView::new(&chat_id, m)).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "messages": views })))
}
