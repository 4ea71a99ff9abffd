//! CORS: browsers call chatd from the application's own origin.
//! Every response carries `Access-Control-Allow-Origin`; any `OPTIONS` is a preflight answered 204.
//!
//! Except the operator's (`/ready`, `/metrics`, `/admin...`): they answer loopback peers without
//! a key, and a browser on the server's host is a loopback peer, so allowing other origins would
//! let any page it opens read them. Only the operator page itself, same-origin, reads them.

use std::future::{ready, Ready};
use std::rc::Rc;

use actix_web::body::EitherBody;
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::{header, Method};
use actix_web::HttpResponse;
use futures_util::future::LocalBoxFuture;

/// The middleware; `origins` is `server.cors_origins` (`*` allows all).
#[derive(Clone)]
pub struct Cors {
    origins: Rc<Vec<String>>,
}

impl Cors {
    pub fn new(origins: Vec<String>) -> Cors {
        Cors { origins: Rc::new(origins) }
    }

    /// The value to send back for a request from `origin`, if that origin is allowed.
    fn allow(&self, origin: Option<&str>) -> Option<String> {
        if self.origins.iter().any(|o| o == "*") {
            return Some("*".into());
        }
        origin.filter(|o| self.origins.iter().any(|allowed| allowed == o)).map(str::to_owned)
    }
}

impl<S, B> Transform<S, ServiceRequest> for Cors
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = CorsService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(CorsService { service: Rc::new(service), cors: self.clone() }))
    }
}

/// The operator's paths, which no other origin may read.
fn operators(path: &str) -> bool {
    matches!(path, "/ready" | "/metrics" | "/admin") || path.starts_with("/admin/")
}

pub struct CorsService<S> {
    service: Rc<S>,
    cors: Cors,
}

impl<S, B> Service<ServiceRequest> for CorsService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok());
        let allow = if operators(req.path()) { None } else { self.cors.allow(origin) };
        if req.method() == Method::OPTIONS {
            let mut preflight = HttpResponse::NoContent();
            if let Some(allow) = allow {
                preflight
                    .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, allow))
                    .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS"))
                    .insert_header((
                        header::ACCESS_CONTROL_ALLOW_HEADERS,
                        "authorization, content-type, micro-namespace, last-event-id",
                    ))
                    .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
                    .insert_header((header::VARY, "Origin"));
            }
            let response = req.into_response(preflight.finish()).map_into_right_body();
            return Box::pin(async move { Ok(response) });
        }
        let service = self.service.clone();
        Box::pin(async move {
            let mut response = service.call(req).await?;
            if let Some(allow) = allow {
                let headers = response.headers_mut();
                if let Ok(value) = header::HeaderValue::from_str(&allow) {
                    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
                    headers.insert(header::VARY, header::HeaderValue::from_static("Origin"));
                }
            }
            Ok(response.map_into_left_body())
        })
    }
}
