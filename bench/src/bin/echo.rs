//! The baseline: the most trivial actix-web 4 JSON endpoint. `POST /echo` parses the body as
//! JSON and writes the same value back as JSON. It runs on the same actix-web build as chatd
//! (no default features) with the same worker count (one per core), so the ratio chatd/echo
//! isolates what chatd's send path costs beyond HTTP + JSON.
//!
//! Usage: echo [--port N] [--workers N]   (prints "listening on PORT" once bound)

use actix_web::{web, App, HttpResponse, HttpServer};

async fn echo(body: web::Json<serde_json::Value>) -> HttpResponse {
    HttpResponse::Ok().json(body.into_inner())
}

fn main() -> std::io::Result<()> {
    let mut port: u16 = 0;
    let mut workers: usize = 0;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        match (arg.as_str(), value) {
            ("--port", Some(v)) => port = v.parse().expect("--port takes a number"),
            ("--workers", Some(v)) => workers = v.parse().expect("--workers takes a number"),
            _ => {
                eprintln!("usage: echo [--port N] [--workers N]");
                std::process::exit(2);
            }
        }
    }
    actix_web::rt::System::new().block_on(async move {
        let mut server = HttpServer::new(|| {
            App::new().app_data(web::JsonConfig::default().limit(65536)).route("/echo", web::post().to(echo))
        })
        .bind(("127.0.0.1", port))?;
        if workers > 0 {
            server = server.workers(workers);
        }
        let bound = server.addrs()[0].port();
        println!("listening on {bound}");
        server.run().await
    })
}
