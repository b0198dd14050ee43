//! Connections that have not sent a whole first request yet ("handshaking"): at most
//! `http.max_handshaking` in all, and at most `http.max_handshaking_per_peer` from one
//! IP address, so one client holding silent connections cannot lock everyone else out.
//! A connection holds a [`HandshakePermit`] from accept until its first request head is
//! complete (or it is dropped at the head deadline).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;

/// The handshaking connections, counted in all and per peer address.
#[derive(Debug)]
pub(crate) struct Handshakes {
    max_total: usize,
    max_per_peer: usize,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_peer: HashMap<IpAddr, usize>,
}

/// Held while a connection handshakes; dropping it frees its place.
#[derive(Debug)]
pub(crate) struct HandshakePermit {
    owner: Arc<Handshakes>,
    peer: IpAddr,
}

impl Handshakes {
    pub(crate) fn new(max_total: usize, max_per_peer: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_peer,
            counts: Mutex::default(),
        })
    }

    /// A permit for a new connection from `peer`, or `None` when it must be closed.
    pub(crate) fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<HandshakePermit> {
        let mut c = self.counts.lock();
        let from_peer = c.by_peer.get(&peer).copied().unwrap_or(0);
        if c.total >= self.max_total || from_peer >= self.max_per_peer {
            return None;
        }
        c.total += 1;
        c.by_peer.insert(peer, from_peer + 1);
        Some(HandshakePermit {
            owner: self.clone(),
            peer,
        })
    }
}

impl Drop for HandshakePermit {
    fn drop(&mut self) {
        let mut c = self.owner.counts.lock();
        c.total -= 1;
        if let Some(n) = c.by_peer.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                c.by_peer.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Handshakes;

    #[test]
    fn one_peer_cannot_take_every_place() {
        let h = Handshakes::new(4, 2);
        let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let a1 = h.admit(a).unwrap();
        let _a2 = h.admit(a).unwrap();
        assert!(h.admit(a).is_none(), "a's share is full");
        let _b1 = h.admit(b).unwrap();
        let _b2 = h.admit(b).unwrap();
        assert!(h.admit("10.0.0.3".parse().unwrap()).is_none(), "the total is full");
        drop(a1);
        assert!(h.admit(a).is_some(), "a place freed is a place again");
    }
}
