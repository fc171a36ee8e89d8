//! A fault-injecting HTTP/1.1 proxy in front of one Flink REST endpoint, for tests that prove
//! what the operator does when Flink's API fails in the middle of an operation. One request per
//! connection (the proxy tells both sides `Connection: close`), so every request meets the
//! rules; a rule matches a method and a path fragment and applies a number of times.
//!
//! Loopback only; the task ends with the proxy.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What happens to a matching request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forwarded to Flink, which acts on it; its answer never reaches the client (a lost
    /// response: the client times out not knowing whether Flink acted).
    LoseResponse,
    /// Forwarded and answered normally; then every connection is refused for this long (Flink's
    /// API goes away right after it accepted the request).
    PassThenOutage(Duration),
}

#[derive(Clone, Debug)]
struct Rule {
    method: String,
    path_contains: String,
    fault: Fault,
    times: usize,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    outage_until: Option<Instant>,
    /// `METHOD path -> what happened`, in order.
    log: Vec<String>,
}

pub struct FaultProxy {
    pub address: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

/// How long a client whose answer was lost is kept waiting before the proxy hangs up.
const HOLD_LOST: Duration = Duration::from_secs(60);
const MAX_HEAD: usize = 64 * 1024;

impl FaultProxy {
    /// Listens on `address`; each connection goes to what `upstream` says now (None: the
    /// connection is closed, as a Service without ready endpoints would).
    pub async fn start(
        address: SocketAddr,
        upstream: impl Fn() -> Option<SocketAddr> + Send + Sync + 'static,
    ) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind(address).await?;
        let address = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let upstream = Arc::new(upstream);
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let state = shared.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let _ = serve(client, &state, upstream()).await;
                });
            }
        });
        Ok(FaultProxy {
            address,
            state,
            task,
        })
    }

    /// Applies `fault` to the next `times` requests whose method is `method` and whose path
    /// contains `path_contains`.
    pub fn inject(&self, method: &str, path_contains: &str, fault: Fault, times: usize) {
        self.lock().rules.push(Rule {
            method: method.to_string(),
            path_contains: path_contains.to_string(),
            fault,
            times,
        });
    }

    /// Whether an outage (`PassThenOutage`) is going on now.
    pub fn in_outage(&self) -> bool {
        self.lock().outage_until.is_some_and(|t| Instant::now() < t)
    }

    /// Requests seen so far, as `METHOD path -> outcome`.
    pub fn log(&self) -> Vec<String> {
        self.lock().log.clone()
    }

    /// Rules not used up yet.
    pub fn pending_rules(&self) -> usize {
        self.lock().rules.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut client: TcpStream,
    state: &Mutex<State>,
    upstream: Option<SocketAddr>,
) -> std::io::Result<()> {
    let (head, body_start) = read_head(&mut client).await?;
    let line = head.lines().next().unwrap_or_default().to_string();
    let mut words = line.split_whitespace();
    let (method, path) = (
        words.next().unwrap_or_default().to_string(),
        words.next().unwrap_or_default().to_string(),
    );
    let decision = {
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        let outage = state.outage_until.is_some_and(|t| Instant::now() < t);
        let fault = if outage {
            None
        } else {
            take_rule(&mut state.rules, &method, &path)
        };
        let outcome = match (outage, fault) {
            (true, _) => "refused (outage)".to_string(),
            (false, None) => "passed".to_string(),
            (false, Some(fault)) => format!("{fault:?}"),
        };
        state.log.push(format!("{method} {path} -> {outcome}"));
        if let Some(Fault::PassThenOutage(length)) = fault {
            state.outage_until = Some(Instant::now() + length);
        }
        (outage, fault)
    };
    match decision {
        (true, _) => Ok(()),
        (false, fault) => {
            let Some(target) = upstream else {
                return Ok(());
            };
            let mut flink = TcpStream::connect(target).await?;
            flink.write_all(close_after(&head).as_bytes()).await?;
            flink.write_all(&body_start).await?;
            let (mut client_read, mut client_write) = client.split();
            let (mut flink_read, mut flink_write) = flink.split();
            let forward = async {
                // The rest of the request body, if any, until the client is done.
                let _ = tokio::io::copy(&mut client_read, &mut flink_write).await;
            };
            let answer = async {
                if fault == Some(Fault::LoseResponse) {
                    let _ = tokio::io::copy(&mut flink_read, &mut tokio::io::sink()).await;
                    tokio::time::sleep(HOLD_LOST).await;
                } else {
                    // The client must not reuse the connection either: Flink closes it after
                    // answering a `Connection: close` request without saying so.
                    if let Ok((head, rest)) = read_head(&mut flink_read).await {
                        let _ = client_write.write_all(close_after(&head).as_bytes()).await;
                        let _ = client_write.write_all(&rest).await;
                        let _ = tokio::io::copy(&mut flink_read, &mut client_write).await;
                    }
                    let _ = client_write.shutdown().await;
                }
            };
            // The answer decides when the exchange is over.
            tokio::select! {
                _ = answer => {}
                _ = async { forward.await; std::future::pending::<()>().await } => {}
            }
            Ok(())
        }
    }
}

fn take_rule(rules: &mut Vec<Rule>, method: &str, path: &str) -> Option<Fault> {
    let index = rules
        .iter()
        .position(|r| r.method.eq_ignore_ascii_case(method) && path.contains(&r.path_contains))?;
    let fault = rules[index].fault;
    rules[index].times -= 1;
    if rules[index].times == 0 {
        rules.remove(index);
    }
    Some(fault)
}

/// Reads a request's or response's head; returns it and the body bytes read with it.
async fn read_head(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
) -> std::io::Result<(String, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end + 4]).to_string();
            return Ok((head, buffer[end + 4..].to_vec()));
        }
        if buffer.len() > MAX_HEAD {
            return Err(std::io::Error::other("request head too large"));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

/// The head with `Connection: close` instead of whatever the client asked for, so Flink closes
/// the connection after its answer and the next request comes on a new one.
fn close_after(head: &str) -> String {
    let mut lines: Vec<&str> = head
        .trim_end_matches("\r\n")
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    lines.push("Connection: close");
    format!("{}\r\n\r\n", lines.join("\r\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_asks_for_close_whatever_the_client_said() {
        let head = "GET /jobs HTTP/1.1\r\nHost: x\r\nconnection: keep-alive\r\n\r\n";
        assert_eq!(
            close_after(head),
            "GET /jobs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn a_rule_applies_its_number_of_times_to_matching_requests_only() {
        let mut rules = vec![Rule {
            method: "POST".into(),
            path_contains: "/stop".into(),
            fault: Fault::LoseResponse,
            times: 2,
        }];
        assert_eq!(take_rule(&mut rules, "GET", "/jobs/1/stop"), None);
        assert_eq!(take_rule(&mut rules, "POST", "/jobs/1/savepoints"), None);
        assert_eq!(
            take_rule(&mut rules, "POST", "/jobs/1/stop"),
            Some(Fault::LoseResponse)
        );
        assert_eq!(
            take_rule(&mut rules, "post", "/jobs/1/stop"),
            Some(Fault::LoseResponse)
        );
        assert_eq!(take_rule(&mut rules, "POST", "/jobs/1/stop"), None);
    }
}
