//! Malformed requests get the right status with a `Status` body; the store stays intact.

use sandbox::ApiServer;
use serde_json::{Value, json};

async fn send(
    method: reqwest::Method,
    url: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .request(method, url)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .expect("the stand-in answers");
    let code = response.status().as_u16();
    let body: Value = response.json().await.expect("the answer is JSON");
    (code, body)
}

/// A request and the status and reason the real server answers it with.
type Case = (
    reqwest::Method,
    String,
    &'static str,
    Vec<u8>,
    u16,
    &'static str,
);

#[tokio::test]
async fn bad_requests_get_status_bodies_and_change_nothing() {
    let server = ApiServer::default()
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = server.url();
    let maps = format!("{base}/api/v1/namespaces/default/configmaps");
    let revision = server.with_store(|s| s.revision());
    let cases: Vec<Case> = vec![
        (
            reqwest::Method::POST,
            maps.clone(),
            "application/json",
            b"{not json".to_vec(),
            400,
            "BadRequest",
        ),
        (
            reqwest::Method::POST,
            maps.clone(),
            "application/json",
            b"[1,2]".to_vec(),
            400,
            "BadRequest",
        ),
        (
            reqwest::Method::POST,
            maps.clone(),
            "text/csv",
            b"a,b".to_vec(),
            415,
            "UnsupportedMediaType",
        ),
        (
            reqwest::Method::POST,
            maps.clone(),
            "application/json",
            vec![b' '; 4 << 20],
            413,
            "RequestEntityTooLarge",
        ),
        (
            reqwest::Method::POST,
            format!("{base}/apis/nope.example.com/v1/namespaces/default/things"),
            "application/json",
            b"{}".to_vec(),
            404,
            "NotFound",
        ),
        (
            reqwest::Method::POST,
            format!("{base}/api/v1/namespaces/missing/configmaps"),
            "application/json",
            br#"{"metadata":{"name":"x"}}"#.to_vec(),
            404,
            "NotFound",
        ),
        (
            reqwest::Method::POST,
            maps.clone(),
            "application/json",
            br#"{"kind":"Secret","metadata":{"name":"x"}}"#.to_vec(),
            400,
            "BadRequest",
        ),
        (
            reqwest::Method::POST,
            maps.clone(),
            "application/json",
            br#"{"metadata":{}}"#.to_vec(),
            422,
            "Invalid",
        ),
        (
            reqwest::Method::PATCH,
            format!("{maps}/absent"),
            "application/merge-patch+json",
            b"{}".to_vec(),
            404,
            "NotFound",
        ),
        (
            reqwest::Method::GET,
            format!("{maps}?labelSelector=a%20in%20b"),
            "application/json",
            Vec::new(),
            400,
            "BadRequest",
        ),
        (
            reqwest::Method::GET,
            format!("{maps}?fieldSelector=spec.x%3D1"),
            "application/json",
            Vec::new(),
            400,
            "BadRequest",
        ),
        (
            reqwest::Method::GET,
            format!("{maps}?continue=zz"),
            "application/json",
            Vec::new(),
            400,
            "BadRequest",
        ),
        (
            reqwest::Method::PUT,
            maps.clone(),
            "application/json",
            b"{}".to_vec(),
            405,
            "MethodNotAllowed",
        ),
    ];
    for (method, url, content_type, body, code, reason) in cases {
        let (got, status) = send(method.clone(), &url, content_type, body).await;
        assert_eq!(
            (got, status["reason"].as_str()),
            (code, Some(reason)),
            "{method} {url}: {status}"
        );
        assert_eq!(status["kind"], json!("Status"));
        assert_eq!(status["code"], json!(code));
    }
    assert_eq!(
        server.with_store(|s| s.revision()),
        revision,
        "a refused request wrote something"
    );
    // A patch that cannot apply leaves the object as it was.
    let (code, created) = send(
        reqwest::Method::POST,
        &maps,
        "application/json",
        br#"{"metadata":{"name":"keep"},"data":{"a":"1"}}"#.to_vec(),
    )
    .await;
    assert_eq!(code, 201);
    let (code, _) = send(
        reqwest::Method::PATCH,
        &format!("{maps}/keep"),
        "application/json-patch+json",
        br#"[{"op":"remove","path":"/data/missing"}]"#.to_vec(),
    )
    .await;
    assert_eq!(code, 422);
    let (_, after) = send(
        reqwest::Method::GET,
        &format!("{maps}/keep"),
        "application/json",
        Vec::new(),
    )
    .await;
    assert_eq!(after, created);
}
