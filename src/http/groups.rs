//! The chat service's group endpoints (m3o chat v2): Create, Invite, Leave, Kick, List, Delete.
//! `Join` is a stream and lives in `stream/`. A group is a chat with a name: everything the
//! chat endpoints do works on it, with `group_id` for `chat_id`. Each change is the chat actor's
//! to make (`chat/membership.rs`); this file parses and shows.

use actix_web::HttpResponse;
use futures_util::future::join_all;
use serde::Deserialize;

use super::body::given;
use super::call::Call;
use super::chat::{self, acting_as, members, user_required};
use super::draft::bounded;
use super::views::GroupView;
use crate::chat::{Change, Delete, Describe, Update};
use crate::error::{Error, Field};
use crate::model::{ChatId, ChatMeta, UserId};
use crate::registry::{GroupSpec, List, Open};

fn group(meta: &ChatMeta) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "group": GroupView::new(meta) }))
}

/// The fields the group endpoints take; each uses some of them.
#[derive(Deserialize)]
pub struct GroupRequest {
    #[serde(alias = "chat_id")]
    group_id: Option<String>,
    user_id: Option<String>,
    name: Option<String>,
    description: Option<String>,
    user_ids: Option<Vec<String>>,
    #[serde(default)]
    private: bool,
}

pub async fn create(call: Call<GroupRequest>) -> Result<HttpResponse, Error> {
    let Call { state, caller, body } = call;
    let mut user_ids = body.user_ids.unwrap_or_default();
    // A user creating a group is in it (and counts against the members limit).
    user_ids.extend(caller.reader().map(|sub| sub.to_string()));
    let members = members(&state, user_ids, 0)?;
    let limits = &state.settings.limits;
    let spec = GroupSpec {
        name: bounded(body.name.as_deref().unwrap_or(""), limits.max_subject_bytes, "name")?,
        description: bounded(body.description.as_deref().unwrap_or(""), limits.max_text_bytes, "description")?,
        private: body.private,
    };
    let open = Open { ns: caller.ns.clone(), id: None, members, group: Some(spec) };
    Ok(group(&chat::open(&state, &caller, open).await?))
}

/// Invite, Leave and Kick: a group id, a user id, one change.
async fn change(call: Call<GroupRequest>, make: fn(UserId) -> Change) -> Result<HttpResponse, Error> {
    let Call { state, caller, body } = call;
    let id = given(&body.group_id).ok_or(Error::Missing(Field::ChatId))?;
    let user = user_required(&caller, given(&body.user_id), Field::UserId)?;
    let max_id = state.settings.limits.max_id_bytes;
    let id = ChatId::parse(id, max_id)?;
    let user = user.map(|u| UserId::parse(u, max_id)).transpose()?;
    let change = make(user.clone().or(caller.reader()).ok_or(Error::Missing(Field::UserId))?);
    // Leaving acts as the user; inviting and kicking act on someone else, as a member.
    if let Change::Leave(_) = change {
        acting_as(&caller, user, Field::UserId)?;
    }
    let update = Update { change, by: caller.reader() };
    Ok(group(&state.ask(&caller.ns, &id, update).await??))
}

pub async fn invite(call: Call<GroupRequest>) -> Result<HttpResponse, Error> {
    change(call, Change::Invite).await
}

pub async fn leave(call: Call<GroupRequest>) -> Result<HttpResponse, Error> {
    change(call, Change::Leave).await
}

pub async fn kick(call: Call<GroupRequest>) -> Result<HttpResponse, Error> {
    change(call, Change::Kick).await
}

/// `List {user_id}`: the chats the user is a member of (groups and unnamed chats). `List {}`:
/// every group of the namespace for an API key, the token's user's chats for a user token.
/// Oldest first, each as its chat says it is now.
pub async fn list(call: Call<GroupRequest>) -> Result<HttpResponse, Error> {
    let Call { state, caller, body } = call;
    let user = given(&body.user_id).map(|u| UserId::parse(u, state.settings.limits.max_id_bytes)).transpose()?;
    let user = caller.acting_as(user)?;
    let list = List { ns: caller.ns.clone(), user: user.clone() };
    let ids = state.registry.send(list).await.map_err(|e| Error::Internal(e.to_string()))?;
    let described = join_all(ids.iter().map(|id| state.ask(&caller.ns, id, Describe { members: None }))).await;
    // A chat deleted, or changed, since the directory answered is left out.
    let mut chats: Vec<ChatMeta> = described
        .into_iter()
        .filter_map(|res| res.ok().and_then(Result::ok).flatten())
        .filter(|meta| match &user {
            Some(user) => meta.user_ids.contains(user),
            None => meta.group,
        })
        .collect();
    chats.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let views: Vec<_> = chats.iter().map(GroupView::new).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "groups": views })))
}

pub async fn delete(call: Call<GroupRequest>) -> Result<HttpResponse, Error> {
    let Call { state, caller, body } = call;
    let id = given(&body.group_id).ok_or(Error::Missing(Field::ChatId))?;
    let id = ChatId::parse(id, state.settings.limits.max_id_bytes)?;
    Ok(group(&state.ask(&caller.ns, &id, Delete { by: caller.reader() }).await??))
}
