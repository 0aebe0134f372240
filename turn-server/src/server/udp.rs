//! The UDP listener: one task that owns the allocations of all its UDP clients.
//! It never blocks on a send: replies that cannot go out at once are dropped.

use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;

use super::link::LinkSource;
use super::shared::Shared;
use super::table::{AllocationTable, SWEEP_INTERVAL};

pub(super) async fn serve_udp(socket: Arc<UdpSocket>, shared: Arc<Shared>) {
    let mut table = AllocationTable::new(Arc::clone(&shared));
    let mut buf = vec![0u8; 65_536];
    let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
    let source = LinkSource::Udp(&socket);
    let cancelled = shared.cancel.cancelled();
    tokio::pin!(cancelled);
    loop {
        tokio::select! {
            biased;
            _ = &mut cancelled => break,
            _ = sweep.tick() => table.sweep(Instant::now()),
            received = socket.recv_from(&mut buf) => {
                let Ok((len, client)) = received else { continue };
                if let Some(reply) = table.handle(client, &buf[..len], &source, Instant::now()) {
                    let _ = socket.try_send_to(reply, client);
                }
            }
        }
    }
}
