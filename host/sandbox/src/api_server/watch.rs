//! Watch streams: replay from a resource version (410 Gone beyond the history), then live
//! events, filtered by namespace and selectors; bookmarks when asked for.

use super::Shared;
use crate::ApiError;
use crate::resources::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{Event, EventKind};
use futures::Stream;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

pub struct WatchRequest {
    pub resource: ResourceType,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub resource_version: Option<u64>,
    pub bookmarks: bool,
    pub timeout: Duration,
}

impl WatchRequest {
    fn selects(&self, object: &Value) -> bool {
        let ns_ok = match &self.namespace {
            Some(ns) if self.resource.namespaced => {
                object
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    == Some(ns)
            }
            _ => true,
        };
        ns_ok && self.labels.matches(object) && self.fields.matches(object)
    }

    /// The event a client of this watch sees for a store event, if any.
    fn view(&self, event: &Event) -> Option<(EventKind, Arc<Value>)> {
        if event.group != self.resource.group || event.plural != self.resource.plural {
            return None;
        }
        let now = self.selects(&event.object);
        let before = event.previous.as_ref().is_some_and(|p| self.selects(p));
        match (event.kind, before, now) {
            (EventKind::Deleted, _, true) => Some((EventKind::Deleted, event.object.clone())),
            (EventKind::Added, _, true) => Some((EventKind::Added, event.object.clone())),
            (EventKind::Modified, true, true) => Some((EventKind::Modified, event.object.clone())),
            (EventKind::Modified, false, true) => Some((EventKind::Added, event.object.clone())),
            (EventKind::Modified, true, false) => Some((EventKind::Deleted, event.object.clone())),
            _ => None,
        }
    }

    fn bookmark(&self, revision: u64) -> Value {
        json!({"type": "BOOKMARK", "object": {
            "kind": self.resource.kind, "apiVersion": self.resource.api_version(),
            "metadata": {"resourceVersion": revision.to_string()}}})
    }
}

/// One event as a line of JSON in ASCII (anything else escaped as `\uXXXX`, as JSON allows):
/// fabric8's HTTP watch decodes each chunk it reads on its own, so a multi-byte character cut
/// by a chunk boundary would make an event unreadable, and for a JobManager's pod watch fatal.
fn line(value: &Value) -> Result<axum::body::Bytes, std::convert::Infallible> {
    let text = value.to_string();
    let mut ascii = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                ascii.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    ascii.push('\n');
    Ok(axum::body::Bytes::from(ascii))
}

/// Serves a watch's events over WebSocket, one JSON event per text message (as the real
/// server does for clients that upgrade, fabric8 among them); ends with a Close frame when
/// the watch ends, and stops when the client goes.
pub async fn over_websocket(
    socket: axum::extract::ws::WebSocket,
    events: impl Stream<Item = Result<axum::body::Bytes, std::convert::Infallible>> + Send + 'static,
) {
    use axum::extract::ws::Message;
    use futures::{SinkExt, StreamExt};
    let (mut sink, mut incoming) = socket.split();
    let mut events = Box::pin(events);
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(bytes)) => {
                    let text = String::from_utf8_lossy(&bytes).trim_end().to_string();
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                Some(Err(never)) => match never {},
                None => {
                    let _ = sink.send(Message::Close(None)).await;
                    return;
                }
            },
            // Reading answers the client's pings; a Close or an error ends the watch.
            message = incoming.next() => match message {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

fn frame(kind: EventKind, object: &Value) -> Value {
    json!({"type": kind.as_str(), "object": object})
}

/// Starts a watch: the replay (or the current objects, for a watch without a resource version)
/// is taken under the store lock together with the subscription, so no event falls between.
pub fn start(
    shared: Arc<Shared>,
    request: WatchRequest,
) -> Result<impl Stream<Item = Result<axum::body::Bytes, std::convert::Infallible>>, ApiError> {
    let (initial, mut receiver, mut last) = {
        let store = shared.store.lock().unwrap_or_else(|e| e.into_inner());
        let receiver = shared.events.subscribe();
        let initial: Vec<Value> = match request.resource_version.filter(|rv| *rv > 0) {
            // Like the real server: a too-old version is an ERROR event in a 200 stream.
            Some(rv) => match store.events_since(rv) {
                Ok(events) => events
                    .iter()
                    .filter_map(|e| request.view(e).map(|(kind, object)| frame(kind, &object)))
                    .collect(),
                Err(gone) => vec![json!({"type": "ERROR", "object": gone.to_status()})],
            },
            None => {
                let options = crate::store::ListOptions {
                    namespace: request.namespace.clone(),
                    labels: request.labels.clone(),
                    fields: request.fields.clone(),
                    ..Default::default()
                };
                store
                    .list(&request.resource, &options)?
                    .0
                    .iter()
                    .map(|o| frame(EventKind::Added, o))
                    .collect()
            }
        };
        (initial, receiver, store.revision())
    };
    let deadline = tokio::time::Instant::now() + request.timeout;
    Ok(async_stream(move |tx| async move {
        for value in initial {
            if tx.send(line(&value)).await.is_err() {
                return;
            }
        }
        if request.bookmarks && tx.send(line(&request.bookmark(last))).await.is_err() {
            return;
        }
        let mut ticker = tokio::time::interval(Duration::from_secs(5));
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return,
                _ = ticker.tick(), if request.bookmarks => {
                    if tx.send(line(&request.bookmark(last))).await.is_err() { return; }
                }
                received = receiver.recv() => match received {
                    Ok(event) => {
                        if event.revision <= last { continue; }
                        last = event.revision;
                        if let Some((kind, object)) = request.view(&event)
                            && tx.send(line(&frame(kind, &object))).await.is_err()
                        {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        let gone = ApiError::gone("the watch fell behind; list again");
                        let _ = tx.send(line(&json!({"type": "ERROR", "object": gone.to_status()}))).await;
                        return;
                    }
                    Err(RecvError::Closed) => return,
                },
            }
        }
    }))
}

/// A stream fed by a task through a small channel (backpressure on slow watchers).
fn async_stream<F, Fut>(
    producer: F,
) -> impl Stream<Item = Result<axum::body::Bytes, std::convert::Infallible>>
where
    F: FnOnce(
        tokio::sync::mpsc::Sender<Result<axum::body::Bytes, std::convert::Infallible>>,
    ) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    tokio::spawn(producer(tx));
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_lines_are_ascii_and_read_back_as_written() {
        let object =
            json!({"metadata": {"name": "café", "annotations": {"note": "ünïcode 😀 ok"}}});
        let bytes = line(&frame(EventKind::Added, &object)).unwrap_or_else(|never| match never {});
        assert!(bytes.is_ascii(), "{bytes:?}");
        assert!(bytes.ends_with(b"\n"));
        let back: Value = serde_json::from_slice(&bytes).expect("JSON");
        assert_eq!(back["object"], object);
    }
}
