//! A stand-in for the ALB of a blue/green deployment: a production listener and a test
//! listener on 127.0.0.1, forwarding TCP to blue or green. The production listener moves from
//! blue to green when told to, as CodeDeploy's AllowTraffic step does; connections already open
//! stay where they are, as ALB connection draining keeps them.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

const BAD_GATEWAY: &[u8] = b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/html\r\ncontent-length: 33\r\nconnection: close\r\n\r\n<h1>502 Bad Gateway</h1>\n        ";

use crate::AbortOnDrop;

/// The two listeners.
pub struct Alb {
    /// Production listener (blue until [`Alb::shift_production`]).
    pub prod: SocketAddr,
    /// Test listener (always green).
    pub test: SocketAddr,
    prod_upstream: Arc<Mutex<SocketAddr>>,
    blue: SocketAddr,
    green: SocketAddr,
    _tasks: Vec<AbortOnDrop>,
}

impl Alb {
    /// Listen on `prod` and `test` (port 0 picks a free one), forwarding to `blue` and `green`.
    pub async fn start(
        prod: SocketAddr,
        test: SocketAddr,
        blue: SocketAddr,
        green: SocketAddr,
    ) -> Self {
        let prod_upstream = Arc::new(Mutex::new(blue));
        let (prod, prod_task) = listen(prod, Arc::clone(&prod_upstream)).await;
        let (test, test_task) = listen(test, Arc::new(Mutex::new(green))).await;
        Alb {
            prod,
            test,
            prod_upstream,
            blue,
            green,
            _tasks: vec![prod_task, test_task],
        }
    }

    /// Point the production listener at green (CodeDeploy's AllowTraffic).
    pub fn shift_production(&self) {
        *self.prod_upstream.lock().unwrap() = self.green;
    }

    /// Point the production listener back at blue (a rollback, or the next rehearsal).
    pub fn reset(&self) {
        *self.prod_upstream.lock().unwrap() = self.blue;
    }

    /// Where production traffic goes now.
    pub fn production_upstream(&self) -> SocketAddr {
        *self.prod_upstream.lock().unwrap()
    }
}

async fn listen(addr: SocketAddr, upstream: Arc<Mutex<SocketAddr>>) -> (SocketAddr, AbortOnDrop) {
    let listener = TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"));
    let local = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let to = *upstream.lock().unwrap();
            tokio::spawn(async move {
                match TcpStream::connect(to).await {
                    Ok(mut server) => {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                    // What an ALB answers when its target is down.
                    Err(_) => {
                        let _ = client.write_all(BAD_GATEWAY).await;
                        let _ = client.shutdown().await;
                    }
                }
            });
        }
    });
    (local, AbortOnDrop(task))
}
