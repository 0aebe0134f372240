//! Helpers shared by the end-to-end tests: an in-process Switchyard server on free ports
//! (`server`), waits on conditions (`wait`), browsers (`browser`), a TURN client
//! (`turn_client`), the admin API's tokens and client (`admin`), a page's own sockets
//! (`sockets`) and impaired links (`impair`: tc on loopback; `lossy_link`: a namespace behind
//! a userspace netem), a real `redis-server` (`redis`), cluster nodes as processes
//! (`cluster_node`), and readers of the event stream and webhooks (`events`). The helpers never write into the source tree.

pub mod admin;
pub mod browser;
pub mod cluster_node;
pub mod cluster_pages;
pub mod events;
pub mod impair;
pub mod lossy_link;
pub mod media;
pub mod promtool;
pub mod redis;
mod server;
pub mod sockets;
pub mod turn_client;
mod wait;
pub mod whip;

pub use server::{cluster_settings, scratch_dir, start_local_server, start_server, ws_url};
pub use switchyard::Server;
pub use wait::{eventually, wait_for};
