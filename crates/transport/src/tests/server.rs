//! A small HTTP/1.1 server on 127.0.0.1 that answers each connection with the next scripted
//! action and records what it received, so the HTTP transport can be tested against
//! throttling, errors, broken streams and silence without the network.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the server does with one request.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// A whole response.
    Respond { status: u16, headers: Vec<(String, String)>, body: Vec<u8> },
    /// A chunked event-stream response: these chunks, `pause` apart, then `end`.
    Stream { chunks: Vec<Vec<u8>>, pause: Duration, end: End },
    /// A chunked `text/event-stream` response with a `request-id` header: these chunks, then
    /// `end`.
    Sse { chunks: Vec<Vec<u8>>, end: End },
    /// Read the request, then close the connection without answering.
    Close,
    /// Read the request, then say nothing until the client closes the connection.
    Hang,
}

/// How a streamed response ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// With the chunked terminator.
    Clean,
    /// By closing the connection without it.
    Cut,
    /// It does not: the server holds the connection open until the client closes it.
    Hold,
}

/// A received request.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) path: String,
    /// Header names lower-cased, in arrival order.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

pub(crate) struct Server {
    pub(crate) url: String,
    received: Arc<Mutex<Vec<Received>>>,
    closed: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub(crate) async fn start(actions: Vec<Action>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let actions = Arc::new(Mutex::new(VecDeque::from(actions)));
        let received = Arc::new(Mutex::new(Vec::new()));
        let closed = Arc::new(Mutex::new(0));
        let (queue, log, hung_up) = (actions, received.clone(), closed.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else { return };
                let (queue, log, hung_up) = (queue.clone(), log.clone(), hung_up.clone());
                tokio::spawn(async move { serve(socket, queue, log, hung_up).await });
            }
        });
        Server { url, received, closed, task }
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Connections the client closed while the server was holding them open.
    pub(crate) fn closed_by_client(&self) -> usize {
        *self.closed.lock().unwrap()
    }
}

async fn serve(
    mut socket: TcpStream,
    queue: Arc<Mutex<VecDeque<Action>>>,
    log: Arc<Mutex<Vec<Received>>>,
    closed: Arc<Mutex<usize>>,
) {
    let Some(request) = read_request(&mut socket).await else { return };
    log.lock().unwrap().push(request);
    let action = queue.lock().unwrap().pop_front().unwrap_or(Action::Close);
    match action {
        Action::Respond { status, headers, body } => {
            let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("connection: close\r\n\r\n");
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(&body).await;
        }
        Action::Stream { chunks, pause, end } => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/vnd.amazon.eventstream\r\n\
                        transfer-encoding: chunked\r\nx-amzn-requestid: stream-1\r\n\
                        connection: close\r\n\r\n";
            chunked(&mut socket, head, chunks, pause, end, &closed).await;
        }
        Action::Sse { chunks, end } => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n\
                        transfer-encoding: chunked\r\nrequest-id: req_sse_1\r\n\
                        connection: close\r\n\r\n";
            chunked(&mut socket, head, chunks, Duration::ZERO, end, &closed).await;
        }
        Action::Close => {}
        Action::Hang => wait_for_close(&mut socket, &closed).await,
    }
    let _ = socket.shutdown().await;
}

/// Writes `head`, then `chunks` in chunked encoding, `pause` apart, then ends as `end` says.
async fn chunked(
    socket: &mut TcpStream,
    head: &str,
    chunks: Vec<Vec<u8>>,
    pause: Duration,
    end: End,
    closed: &Mutex<usize>,
) {
    let _ = socket.write_all(head.as_bytes()).await;
    for (i, chunk) in chunks.into_iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(pause).await;
        }
        let framed =
            [format!("{:x}\r\n", chunk.len()).into_bytes(), chunk, b"\r\n".to_vec()].concat();
        if socket.write_all(&framed).await.is_err() {
            return;
        }
        let _ = socket.flush().await;
    }
    match end {
        End::Clean => {
            let _ = socket.write_all(b"0\r\n\r\n").await;
        }
        End::Cut => {}
        End::Hold => wait_for_close(socket, closed).await,
    }
}

async fn wait_for_close(socket: &mut TcpStream, closed: &Mutex<usize>) {
    let mut buffer = [0u8; 64];
    while matches!(socket.read(&mut buffer).await, Ok(n) if n > 0) {}
    *closed.lock().unwrap() += 1;
}

async fn read_request(socket: &mut TcpStream) -> Option<Received> {
    let mut data = Vec::new();
    let mut buffer = [0u8; 4096];
    let head_end = loop {
        let n = socket.read(&mut buffer).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buffer[..n]);
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = data[head_end..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut buffer).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&buffer[..n]);
    }
    Some(Received { path, headers, body })
}
