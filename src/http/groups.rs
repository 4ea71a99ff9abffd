//! The chat service's group endpoints (m3o chat v2): Create, Invite, Leave, Kick, List, Delete.
//! `Join` is a stream and lives in `stream/`. A group is a chat with a name: everything the
//! chat endpoints do works on it, with `group_id` for `chat_id`.

use actix_web::HttpResponse;
use serde::{Deserialize, Serialize};

use super::body::given;
use super::call::Call;
use super::chat::{self, acting_as, bounded, members, user_required};
use crate::error::{Error, Field};
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
    let meta =
        chat::create(&state, &caller, Create { ns: caller.ns.clone(), id: None, members, group: Some(spec) }).await?;
    Ok(group(&meta))
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
    let update = Update { ns: caller.ns.clone(), id, change, by: caller.reader() };
    let meta = state.registry.send(update).await.map_err(|e| Error::Internal(e.to_string()))??;
    Ok(group(&meta))
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

pub async fn list(call: Call<GroupRequest>) -> Result<HttpResponse, Error> {
    let Call { state, caller, body } = call;
    let user = user_required(&caller, given(&body.user_id), Field::UserId)?;
    let user = user.map(|u| UserId::parse(u, state.settings.limits.max_id_bytes)).transpose()?;
    let user = acting_as(&caller, user, Field::UserId)?;
    let list = List { ns: caller.ns.clone(), user };
    let groups = state.registry.send(list).await.map_err(|e| Error::Internal(e.to_string()))?;
    let views: Vec<_> = groups.iter().map(GroupView::new).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "groups": views })))
}

pub async fn delete(call: Call<GroupRequest>) -> Result<HttpResponse, Error> {
    let Call { state, caller, body } = call;
    let id = given(&body.group_id).ok_or(Error::Missing(Field::ChatId))?;
    let id = ChatId::parse(id, state.settings.limits.max_id_bytes)?;
    let delete = Delete { ns: caller.ns.clone(), id, by: caller.reader() };
    let meta = state.registry.send(delete).await.map_err(|e| Error::Internal(e.to_string()))??;
    Ok(group(&meta))
}
