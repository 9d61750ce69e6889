//! The "empty-handler axum baseline" for `bench/run`: the same HTTP stack as `vkyc serve`
//! (axum 0.8 on tokio's multi-threaded runtime) answering the benchmarked routes with
//! fixed bodies of the size and shape of real answers. No database, no authentication,
//! no middleware. Whatever `vkyc` serves slower than this is the cost of its own work.
//!
//!     cargo run --release --example baseline_server -- 127.0.0.1:0
//!
//! Prints the bound address (`listening on 127.0.0.1:PORT`) on stdout, then serves until
//! killed.

use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::io::Write;
use tokio::net::TcpListener;

/// A real `GET /verification/vkyc` answer of a freshly created request, field for field
/// (355 bytes; the real ones are 353 to 358 depending on ids and port).
const GET_BODY: &str = concat!(
    r#"{"verification_id":"seed_123","reference_id":124,"user_reference_id":1,"#,
    r#""user_id":"bench_user","status":"RECEIVED","sub_status":"LINK_GENERATED","#,
    r#""vkyc_link":"http://127.0.0.1:38327/v/ff88e8c2816dbbf39f89e220ef79da3fd42b6c97","#,
    r#""link_expiry":"2026-11-26T13:42:17.817Z","recording_link":null,"#,
    r#""meeting_schedule":null,"auditor_remarks":null,"agent_remarks":null}"#
);

/// A real `POST /verification/vkyc` answer, of the length the benchmark's ids produce.
const POST_BODY: &str = concat!(
    r#"{"verification_id":"b1a2b3c4d_1_12345","reference_id":4321,"status":"RECEIVED","#,
    r#""sub_status":"LINK_GENERATED","#,
    r#""vkyc_link":"http://127.0.0.1:38327/v/ff88e8c2816dbbf39f89e220ef79da3fd42b6c97","#,
    r#""link_expiry":"2026-11-26T13:42:17.817Z","user_reference_id":1,"user_id":"bench_user"}"#
);

async fn get_vkyc() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], GET_BODY)
}

/// Reads the whole request body, as the real handler must, then answers.
async fn post_vkyc(body: Bytes) -> impl IntoResponse {
    std::hint::black_box(body);
    ([(CONTENT_TYPE, "application/json")], POST_BODY)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let app = Router::new().route("/verification/vkyc", get(get_vkyc).post(post_vkyc));
    axum::serve(listener, app).await
}
