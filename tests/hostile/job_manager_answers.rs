//! A tenant controls its JobManager's image, so every answer of its REST API. However large an
//! answer, the operator's Flink client (with the operator's own settings) reads at most its
//! limit, refuses the rest unread, and its memory stays flat.

use flink_operator_tests::support::rss_bytes;
use flink_rest::{FlinkClient, FlinkError};
use std::io::{Read, Write};

/// Answers every connection with a 2 GiB JSON body (no length announced), as fast as the
/// client reads.
fn endless_job_manager() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                if stream
                    .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"jobs\":[\"")
                    .is_err()
                {
                    return;
                }
                let chunk = vec![b'a'; 1 << 20];
                for _ in 0..2048 {
                    if stream.write_all(&chunk).is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}

#[test]
fn a_job_manager_answering_2_gib_leaves_the_operators_memory_flat() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let base = endless_job_manager();
    let settings = flink_operator::settings::Settings::default();
    let client = FlinkClient::new(&base, settings.flink_client.clone()).expect("client");
    let before = rss_bytes();
    let answers = runtime.block_on(async {
        let calls = (0..2).map(|_| {
            let client = client.clone();
            async move { client.jobs_overview().await }
        });
        futures::future::join_all(calls).await
    });
    let grown = rss_bytes().saturating_sub(before);
    for answer in answers {
        assert!(
            matches!(answer, Err(FlinkError::AnswerTooLarge { .. })),
            "{answer:?}"
        );
    }
    assert!(
        grown < 128 << 20,
        "two answers of 2 GiB grew the operator by {} MiB",
        grown >> 20
    );
}
