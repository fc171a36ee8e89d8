//! The request dispatcher: path and verb to a store call, and the answer as the real server
//! gives it (objects, lists, Tables, `Status` errors, watch streams).

use super::route::{self, ResourcePath, Route};
use super::watch::{self, WatchRequest};
use super::{MAX_BODY_BYTES, Shared, discovery};
use crate::ApiError;
use crate::patch::PatchType;
use crate::resources::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{DeleteOptions, ListOptions, Propagation, Subresource};
use crate::table;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

fn json_response(code: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error_response(error: &ApiError) -> Response {
    json_response(error.code, &error.to_status())
}

pub async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    // A watch asked for over WebSocket (fabric8's first choice; anything else is answered as
    // over plain HTTP, which clients take as "no WebSocket here").
    let (mut parts, body) = request.into_parts();
    let upgrade = match parts
        .headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
    {
        Some(v) if v.eq_ignore_ascii_case("websocket") => {
            use axum::extract::FromRequestParts;
            axum::extract::ws::WebSocketUpgrade::from_request_parts(&mut parts, &())
                .await
                .ok()
        }
        _ => None,
    };
    let request = Request::from_parts(parts, body);
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query: HashMap<String, String> = request
        .uri()
        .query()
        .map(url_decode_pairs)
        .unwrap_or_default();
    let headers = request.headers().clone();
    let body = match axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => return error_response(&ApiError::too_large(MAX_BODY_BYTES)),
    };
    shared
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    if method != Method::GET {
        shared
            .writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    match dispatch(&shared, &method, &path, &query, &headers, &body) {
        Ok(Reply::Json(code, value)) => json_response(code, &value),
        Ok(Reply::Text(text)) => (StatusCode::OK, text).into_response(),
        Ok(Reply::Log(text)) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], text).into_response()
        }
        Ok(Reply::Watch(request)) => match watch::start(shared.clone(), *request) {
            Ok(stream) if upgrade.is_some() => {
                shared
                    .websocket_watches
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                upgrade
                    .map(|ws| ws.on_upgrade(move |socket| watch::over_websocket(socket, stream)))
                    .unwrap_or_else(|| error_response(&ApiError::internal("no upgrade")))
            }
            Ok(stream) => Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::TRANSFER_ENCODING, "chunked")
                .body(Body::from_stream(stream))
                .unwrap_or_else(|_| error_response(&ApiError::internal("cannot start the watch"))),
            Err(e) => error_response(&e),
        },
        Err(e) => {
            tracing::debug!(%method, %path, code = e.code, message = %e.message, "request refused");
            error_response(&e)
        }
    }
}

enum Reply {
    Json(u16, Value),
    Text(&'static str),
    Log(String),
    Watch(Box<WatchRequest>),
}

fn url_decode_pairs(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn dispatch(
    shared: &Arc<Shared>,
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let route = route::parse(path).ok_or_else(|| ApiError::not_found_path(path))?;
    let types = || shared.with_store(|s| s.types().to_vec());
    match route {
        Route::Version => Ok(Reply::Json(200, discovery::version())),
        Route::Health => Ok(Reply::Text("ok")),
        Route::OpenApiRoot => Ok(Reply::Json(200, discovery::openapi_root(&types()))),
        Route::OpenApi { group, version } => {
            discovery::openapi_group_version(&types(), &group, &version)
                .map(|doc| Reply::Json(200, doc))
                .ok_or_else(|| ApiError::not_found_path(path))
        }
        Route::OpenApiV2 => Err(ApiError::not_found_path(path)),
        Route::CoreVersions => Ok(Reply::Json(
            200,
            discovery::core_versions(&shared.address.to_string()),
        )),
        Route::Groups => Ok(Reply::Json(200, discovery::groups(&types()))),
        Route::Group(name) => discovery::group(&types(), &name)
            .map(|g| Reply::Json(200, g))
            .ok_or_else(|| ApiError::not_found_path(path)),
        Route::Resources { group, version } => discovery::resources(&types(), &group, &version)
            .map(|r| Reply::Json(200, r))
            .ok_or_else(|| ApiError::not_found_path(path)),
        Route::Resource(resource) => {
            resource_request(shared, method, path, &resource, query, headers, body)
        }
    }
}

fn flag(query: &HashMap<String, String>, key: &str) -> bool {
    query
        .get(key)
        .is_some_and(|v| v == "true" || v == "1" || v.is_empty())
}

fn parse_body(body: &[u8], headers: &HeaderMap) -> Result<Value, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let media = content_type.split(';').next().unwrap_or("").trim();
    match media {
        "application/json" | "" | "*/*" => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}"))),
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::bad_request("the body is not UTF-8"))?;
            serde_saphyr::from_str(text)
                .map_err(|e| ApiError::bad_request(format!("the body is not valid YAML: {e}")))
        }
        "application/vnd.kubernetes.protobuf" => super::protobuf::decode(body),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

fn list_options(
    resource: &ResourcePath,
    query: &HashMap<String, String>,
) -> Result<ListOptions, ApiError> {
    Ok(ListOptions {
        namespace: resource.namespace.clone(),
        labels: LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or(""))?,
        fields: FieldSelector::parse(query.get("fieldSelector").map(String::as_str).unwrap_or(""))?,
        limit: match query.get("limit").filter(|l| !l.is_empty()) {
            Some(l) => Some(l.parse::<usize>().map_err(|_| {
                ApiError::bad_request(format!("limit must be a number, got {l:?}"))
            })?)
            .filter(|l| *l > 0),
            None => None,
        },
        continue_token: query.get("continue").filter(|c| !c.is_empty()).cloned(),
    })
}

fn delete_options(query: &HashMap<String, String>, body: &[u8]) -> Result<DeleteOptions, ApiError> {
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("DeleteOptions are not valid JSON: {e}")))?
    };
    let policy = body
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| query.get("propagationPolicy").cloned())
        .or_else(|| {
            body.get("orphanDependents")
                .and_then(Value::as_bool)
                .filter(|o| *o)
                .map(|_| "Orphan".to_string())
        });
    let propagation = match policy.as_deref() {
        None | Some("Background") => Propagation::Background,
        Some("Foreground") => Propagation::Foreground,
        Some("Orphan") => Propagation::Orphan,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown propagationPolicy {other:?}"
            )));
        }
    };
    let dry_run = query.get("dryRun").is_some_and(|v| v == "All")
        || body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    let grace_period_seconds = body
        .get("gracePeriodSeconds")
        .and_then(Value::as_i64)
        .or_else(|| {
            query
                .get("gracePeriodSeconds")
                .and_then(|g| g.parse::<i64>().ok())
        });
    Ok(DeleteOptions {
        propagation,
        grace_period_seconds,
        precondition_uid: body
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string),
        precondition_resource_version: body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string),
        dry_run,
    })
}

fn list_reply(
    rt: &ResourceType,
    items: Vec<Value>,
    next: Option<String>,
    revision: u64,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Value {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if table::wants_table(accept) {
        let mut t = table::to_table(
            rt,
            &items,
            &revision.to_string(),
            query.get("includeObject").is_some_and(|v| v == "Object"),
        );
        if let Some(next) = next {
            t["metadata"]["continue"] = json!(next);
        }
        return t;
    }
    let mut metadata = json!({"resourceVersion": revision.to_string()});
    if let Some(next) = next {
        metadata["continue"] = json!(next);
    }
    json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": metadata, "items": items})
}

#[allow(clippy::too_many_arguments)]
fn resource_request(
    shared: &Arc<Shared>,
    method: &Method,
    path: &str,
    resource: &ResourcePath,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let rt = shared
        .with_store(|s| {
            s.resource_type(&resource.group, &resource.version, &resource.plural)
                .cloned()
        })
        .ok_or_else(|| ApiError::not_found_path(path))?;
    if !rt.namespaced && resource.namespace.is_some() {
        return Err(ApiError::not_found_path(path));
    }
    let ns = resource.namespace.as_deref();
    let dry_run = query.get("dryRun").is_some_and(|v| v == "All");
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if resource.subresource.as_deref() == Some("log")
        && rt.plural == "pods"
        && rt.group.is_empty()
        && *method == Method::GET
    {
        let name = resource.name.clone().unwrap_or_default();
        let namespace = resource
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        shared.with_store(|s| s.get(&rt, Some(&namespace), &name))?;
        let path = shared
            .logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(namespace, name.clone()))
            .cloned();
        let text = path
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        let tail = query.get("tailLines").and_then(|t| t.parse::<usize>().ok());
        let text = match tail {
            Some(n) => {
                let lines: Vec<&str> = text.lines().collect();
                lines[lines.len().saturating_sub(n)..].join("\n") + "\n"
            }
            None => text,
        };
        return Ok(Reply::Log(text));
    }
    let subresource = match resource.subresource.as_deref() {
        None => Subresource::Main,
        Some("status") if rt.status_subresource => Subresource::Status,
        Some("scale") if rt.scale.is_some() => Subresource::Main,
        Some(other) => {
            return Err(ApiError::not_found_path(&format!(
                "{path} (no subresource {other})"
            )));
        }
    };
    let is_scale = resource.subresource.as_deref() == Some("scale");

    let Some(name) = resource.name.as_deref() else {
        return match *method {
            Method::GET if flag(query, "watch") => {
                let options = list_options(resource, query)?;
                let resource_version = match query.get("resourceVersion").filter(|v| !v.is_empty())
                {
                    Some(v) => Some(v.parse::<u64>().map_err(|_| {
                        ApiError::bad_request(format!("invalid resourceVersion {v:?}"))
                    })?),
                    None => None,
                };
                let timeout = query
                    .get("timeoutSeconds")
                    .and_then(|t| t.parse::<u64>().ok())
                    .unwrap_or(1800);
                Ok(Reply::Watch(Box::new(WatchRequest {
                    resource: rt,
                    namespace: options.namespace,
                    labels: options.labels,
                    fields: options.fields,
                    resource_version,
                    bookmarks: flag(query, "allowWatchBookmarks"),
                    timeout: Duration::from_secs(timeout),
                })))
            }
            Method::GET => {
                let options = list_options(resource, query)?;
                let (items, next, revision) = shared
                    .with_store(|s| s.list(&rt, &options).map(|(i, n)| (i, n, s.revision())))?;
                Ok(Reply::Json(
                    200,
                    list_reply(&rt, items, next, revision, headers, query),
                ))
            }
            Method::POST => {
                let object = parse_body(body, headers)?;
                let created = shared.with_store(|s| s.create(&rt, ns, object, dry_run))?;
                Ok(Reply::Json(201, created))
            }
            Method::DELETE => {
                let options = list_options(resource, query)?;
                let delete = delete_options(query, body)?;
                let (items, revision) = shared.with_store(|s| {
                    s.delete_collection(&rt, &options, &delete)
                        .map(|i| (i, s.revision()))
                })?;
                Ok(Reply::Json(
                    200,
                    list_reply(&rt, items, None, revision, &HeaderMap::new(), query),
                ))
            }
            _ => Err(ApiError::method_not_allowed(format!(
                "{method} is not allowed on a collection"
            ))),
        };
    };

    match *method {
        Method::GET if is_scale => Ok(Reply::Json(
            200,
            shared.with_store(|s| s.scale(&rt, ns, name))?,
        )),
        Method::GET => {
            let object = shared.with_store(|s| s.get(&rt, ns, name))?;
            if table::wants_table(accept) {
                let revision = shared.with_store(|s| s.revision());
                return Ok(Reply::Json(
                    200,
                    table::to_table(
                        &rt,
                        &[object],
                        &revision.to_string(),
                        query.get("includeObject").is_some_and(|v| v == "Object"),
                    ),
                ));
            }
            Ok(Reply::Json(200, object))
        }
        Method::PUT if is_scale => {
            let scale = parse_body(body, headers)?;
            Ok(Reply::Json(
                200,
                shared.with_store(|s| s.set_scale(&rt, ns, name, &scale, dry_run))?,
            ))
        }
        Method::PUT => {
            let object = parse_body(body, headers)?;
            Ok(Reply::Json(
                200,
                shared.with_store(|s| s.replace(&rt, ns, name, object, subresource, dry_run))?,
            ))
        }
        Method::PATCH => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let patch_type = PatchType::from_content_type(content_type)?;
            if is_scale {
                let current = shared.with_store(|s| s.scale(&rt, ns, name))?;
                let patched = crate::patch::apply(&current, patch_type, body, true)?;
                return Ok(Reply::Json(
                    200,
                    shared.with_store(|s| s.set_scale(&rt, ns, name, &patched, dry_run))?,
                ));
            }
            if patch_type == PatchType::Apply {
                let manager = query
                    .get("fieldManager")
                    .filter(|m| !m.is_empty())
                    .ok_or_else(|| {
                        ApiError::bad_request("fieldManager is required for apply patches")
                    })?;
                let force = flag(query, "force");
                let (code, object) = shared.with_store(|s| {
                    s.apply(&rt, ns, name, body, manager, force, subresource, dry_run)
                })?;
                return Ok(Reply::Json(code, object));
            }
            Ok(Reply::Json(
                200,
                shared.with_store(|s| {
                    s.patch(&rt, ns, name, patch_type, body, subresource, dry_run)
                })?,
            ))
        }
        Method::DELETE => {
            let options = delete_options(query, body)?;
            Ok(Reply::Json(
                200,
                shared.with_store(|s| s.delete(&rt, ns, name, &options))?,
            ))
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "{method} is not allowed on an object"
        ))),
    }
}
