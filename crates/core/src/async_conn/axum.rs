//! The upgrade as an axum 0.8 extractor (feature `axum`): [`WebSocketUpgrade`], answered by
//! core through the [hyper helper](crate::hyper), so every check, the accept key, the
//! subprotocol policy and permessage-deflate negotiation are core's.
//!
//! ```no_run
//! use axum::Router;
//! use axum::response::Response;
//! use axum::routing::get;
//! use lowbit_websockets::axum::WebSocketUpgrade;
//! use lowbit_websockets::{DeflateOptions, OpCode};
//!
//! async fn hello(ws: WebSocketUpgrade) -> Response {
//!     ws.deflate(DeflateOptions::default()).on_upgrade(|mut conn, _accepted| async move {
//!         conn.write_message(OpCode::Text, b"hello").await?;
//!         conn.close().await
//!     })
//! }
//! let app: Router = Router::new().route("/ws", get(hello));
//! ```

use std::convert::Infallible;
use std::future::Future;

use ::axum_core::body::Body;
use ::axum_core::extract::FromRequestParts;
use ::axum_core::response::Response;
use ::http::request::Parts;
use ::hyper::upgrade::OnUpgrade;

use super::AsyncConn;
use super::hyper::{HyperStream, answer, request_head};
use crate::deflate::DeflateOptions;
use crate::handshake::Accepted;
use crate::role::Config;
use crate::upgrade::{AcceptOptions, SubprotocolPolicy};

/// An extractor for a WebSocket upgrade request. Extraction never fails: the request is
/// checked by core in [`on_upgrade`](WebSocketUpgrade::on_upgrade), once the options are set,
/// and a bad one is answered with core's 4xx there.
#[derive(Debug)]
pub struct WebSocketUpgrade {
    /// The request head, as core parses it: the options that decide the answer come later.
    head: Vec<u8>,
    on_upgrade: Option<OnUpgrade>,
    opts: AcceptOptions,
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self {
            head: request_head(&parts.method, &parts.uri, parts.version, &parts.headers),
            on_upgrade: parts.extensions.remove::<OnUpgrade>(),
            opts: AcceptOptions::default(),
        })
    }
}

impl WebSocketUpgrade {
    /// Replaces every option: limits, deflate and the subprotocol policy.
    pub fn options(mut self, opts: AcceptOptions) -> Self {
        self.opts = opts;
        self
    }

    /// Accepts permessage-deflate offers with these settings (declined by default).
    pub fn deflate(mut self, deflate: DeflateOptions) -> Self {
        self.opts.deflate = Some(deflate);
        self
    }

    /// How the subprotocol is picked (none by default).
    pub fn protocols(mut self, protocols: SubprotocolPolicy) -> Self {
        self.opts.protocols = protocols;
        self
    }

    /// The connection's limits (`max_read_limit`, `max_chunk_size`); the role is always the
    /// server's.
    pub fn config(mut self, config: Config) -> Self {
        self.opts.config = config;
        self
    }

    /// Answers the request: core's 101, with `callback` spawned on the connection (and what
    /// was agreed) once hyper hands it over; or core's 4xx/5xx refusal, and `callback` is
    /// dropped. The callback's output is dropped too, so it may end with `?` on a
    /// [`Result`](crate::Result). If the upgrade fails after the 101 (the client left), the
    /// callback is dropped without running.
    pub fn on_upgrade<F, Fut>(self, callback: F) -> Response
    where
        F: FnOnce(AsyncConn<HyperStream>, Accepted) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
    {
        match answer(&self.head, self.on_upgrade, &self.opts, |_| None) {
            Ok((response, upgrading)) => {
                tokio::spawn(async move {
                    if let Ok((conn, accepted)) = upgrading.await {
                        let _ = callback(conn, accepted).await;
                    }
                });
                response.map(Body::new)
            }
            Err(refused) => refused.into_response().map(Body::new),
        }
    }
}
