use axum::Router;
use axum::response::Response;
use axum::routing::get;
use lowbit_websockets::axum::WebSocketUpgrade;
use lowbit_websockets::{DeflateOptions, OpCode};

/// Upgrades with permessage-deflate and echoes; core answers a bad request with its 4xx.
async fn echo(ws: WebSocketUpgrade) -> Response {
    ws.deflate(DeflateOptions::default()).on_upgrade(|mut conn, _accepted| async move {
        let mut buf = Vec::new();
        loop {
            let (op, payload) = conn.read_message(&mut buf).await?;
            if op == OpCode::Close {
                return Ok::<_, lowbit_websockets::Error>(());
            }
            conn.write_message(op, payload).await?;
        }
    })
}

/// The app: serve it with `axum::serve(listener, app())`.
pub fn app() -> Router {
    Router::new().route("/ws", get(echo))
}
