//! A TCP relay the test controls: it cuts the path between two live processes the way a
//! network partition does (bytes stop, nothing is reset), then heals it.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A relay from `addr` to a target; stopped on drop.
pub struct FaultProxy {
    pub addr: SocketAddr,
    cut: Arc<watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Relays connections on a loopback port of its own to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(watch::channel(false).0);
        let state = cut.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, target, state.subscribe()));
            }
        });
        Self { addr, cut, task }
    }

    /// Bytes stop flowing both ways on every connection, and new connections are
    /// accepted and held silent: no FIN, no RST, like a partition.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Every connection held through the cut is closed (its ends see it go and
    /// reconnect); new connections relay again.
    pub fn heal(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(mut client: TcpStream, target: SocketAddr, mut cut: watch::Receiver<bool>) {
    if *cut.borrow_and_update() {
        let _ = cut.wait_for(|c| !*c).await;
        return; // held silent through the cut, then closed
    }
    let Ok(mut upstream) = TcpStream::connect(target).await else {
        return;
    };
    let was_cut = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => false,
        _ = cut.wait_for(|c| *c) => true,
    };
    if was_cut {
        // Both sockets stay open and silent until the heal, then close.
        let _ = cut.wait_for(|c| !*c).await;
    }
}
