//! One unary call, extracted once: who calls, for which namespace, with its parsed body.
//!
//! Every unary handler takes a [`Call<T>`] and returns `Result<_, Error>`; the route table names
//! the endpoint, so failures here and in the handler become the same endpoint's micro error.
//! Authentication comes before the body is read, keeping the contract's order: 401, namespace
//! 403, then the 400s.

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use super::body;
use super::error::{ApiError, At};
use super::{AppState, Caller};
use crate::error::Error;

/// The endpoint a route serves, e.g. `"chat.Send"`: attached to each route by the route table.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint(pub &'static str);

pub struct Call<T> {
    pub state: web::Data<AppState>,
    pub caller: Caller,
    pub body: T,
}

impl<T: DeserializeOwned + 'static> FromRequest for Call<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move {
            let endpoint = req.app_data::<Endpoint>().map_or("chatd", |e| e.0);
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| Error::Internal("the app has no state".into()).at(endpoint))?;
            let caller = state.caller(&req).map_err(|e| e.at(endpoint))?;
            let body =
                body::parse(&req, payload, state.settings.server.max_body_bytes).await.map_err(|e| e.at(endpoint))?;
            Ok(Call { state, caller, body })
        })
    }
}
